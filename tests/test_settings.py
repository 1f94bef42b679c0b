"""Settings from the environment: a value Beacon cannot use stops it with the variable's
name, rather than running with a surprise."""

from __future__ import annotations

import pytest

from bot.settings import Settings, SettingsError


@pytest.mark.parametrize("name, value", [
    ("BEACON_REFUSAL_DELAY_S", "soon"),
    ("BEACON_REFUSAL_DELAY_S", "-1"),
    ("BEACON_REFUSAL_DELAY_S", "nan"),
    ("BEACON_REFUSAL_DELAY_S", "inf"),
    ("BEACON_REFUSAL_DELAY_S", "1e308"),  # held until Retry-After (an hour): found live
    ("BEACON_REFUSAL_MAX_HELD", "-5"),
    ("BEACON_WEBCHAT_NEW_PER_HOUR", "twenty"),
    ("BEACON_RASA_URL", "ftp://rasa"),
])
def test_unusable_values_name_their_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_refusal_settings_are_read():
    settings = Settings.from_env({"BEACON_REFUSAL_DELAY_S": "0.5",
                                  "BEACON_REFUSAL_MAX_HELD": "0"})
    assert (settings.refusal_delay_s, settings.refusal_max_held) == (0.5, 0)
    assert Settings.from_env({}).refusal_delay_s == 2.0
