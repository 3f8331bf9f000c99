"""The shared value checks: one message per setting, whichever entry point a value comes through."""
import pytest

from fapkit.checks import check_alpha, check_finite, check_ratio
from fapkit.config import make_config
from fapkit.fairness.discriminators import FairnessDiscriminator
from fapkit.masking import check_ratio as masking_check_ratio


def test_values_inside_the_ranges_come_back_as_floats():
    assert check_ratio(0) == 0.0 and isinstance(check_ratio(0), float)
    assert check_alpha(1) == 1.0 and check_finite("lam", 3) == 3.0


@pytest.mark.parametrize("check, value, message", [
    (check_ratio, 1.0, r"pruning ratio must be in \[0, 1\) \(fraction of weights removed\), got 1.0"),
    (check_ratio, 80, r"got 80"),
    (check_ratio, "0.8x", r"pruning ratio must be a number in \[0, 1\), got '0.8x'"),
    (check_ratio, True, r"pruning ratio must be a number in \[0, 1\), got True"),
    (check_ratio, float("nan"), r"pruning ratio must be a finite number, got nan"),
    (check_alpha, -0.1, r"alpha must be in \[0, 1\], got -0.1 \(1: DI only, 0: DEO only\)"),
    (lambda v: check_finite("lam", v), float("inf"), r"lam must be a finite number, got inf"),
])
def test_bad_values_name_the_setting_the_value_and_what_is_allowed(check, value, message):
    with pytest.raises(ValueError, match=message):
        check(value)


def test_config_masking_and_discriminators_share_the_same_checks():
    assert masking_check_ratio is check_ratio
    for call in (lambda: make_config("faprune", alpha=2.0), lambda: FairnessDiscriminator(alpha=2.0)):
        with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 2.0"):
            call()
