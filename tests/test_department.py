"""The department file: the example is complete, and bad files fail naming the field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from bot.department import DepartmentFileError, load_department
from bot.settings import PROJECT_ROOT
from bot.topics import FAQ_TOPICS

EXAMPLE = yaml.safe_load((PROJECT_ROOT / "data/department.yml").read_text())


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "department.yml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def broken(tmp_path: Path, change) -> str:
    data = copy.deepcopy(EXAMPLE)
    change(data)
    with pytest.raises(DepartmentFileError) as info:
        load_department(write(tmp_path, data))
    return str(info.value)


def test_example_answers_every_topic_with_facts_filled_in(department):
    for topic in FAQ_TOPICS:
        answer = department.faq_answer(topic)
        assert "{" not in answer and "}" not in answer, topic
        assert len(answer) > 40, topic
    assert department.phones["non_emergency"] in department.faq_answer("non_emergency_contact")
    assert department.urls["records"] in department.faq_answer("records_request")


def test_changing_a_phone_number_is_one_edit(tmp_path):
    text = (PROJECT_ROOT / "data/department.yml").read_text()
    edited = text.replace('non_emergency: "(555) 201-4400"', 'non_emergency: "(555) 999-0000"')
    assert edited != text
    department = load_department(write(tmp_path, edited))
    for topic in ("non_emergency_contact", "file_report", "house_watch"):
        assert "(555) 999-0000" in department.faq_answer(topic)
        assert "201-4400" not in department.faq_answer(topic)


def test_unknown_fact_names_the_text_and_the_fact(tmp_path):
    def change(d):
        d["faq"]["pay_citation"]["es"] = "Pague en {urls.citashuns}."

    message = broken(tmp_path, change)
    assert "faq.pay_citation.es" in message and "urls.citashuns" in message


def test_missing_topic_is_named(tmp_path):
    message = broken(tmp_path, lambda d: d["faq"].pop("ride_along"))
    assert "faq" in message and "ride_along" in message


def test_bad_phone_is_named(tmp_path):
    def change(d):
        d["phones"]["non_emergency"] = "call us!"

    assert "phones.non_emergency" in broken(tmp_path, change)


def test_missing_required_phone(tmp_path):
    message = broken(tmp_path, lambda d: d["phones"].pop("crisis_lifeline"))
    assert "phones" in message and "crisis_lifeline" in message


def test_bad_time_zone_is_named(tmp_path):
    def change(d):
        d["department"]["timezone"] = "Mars/Olympus"

    message = broken(tmp_path, change)
    assert "department.timezone" in message and "Mars/Olympus" in message


def test_bad_schedule_range_is_named(tmp_path):
    def change(d):
        d["schedule"]["monday"] = ["17:00-08:00"]

    message = broken(tmp_path, change)
    assert "schedule" in message and "monday" in message


def test_unknown_day_and_unknown_section(tmp_path):
    def change(d):
        d["schedule"]["funday"] = ["08:00-09:00"]

    assert "funday" in broken(tmp_path, change)
    assert "extra_stuff" in broken(tmp_path, lambda d: d.update(extra_stuff=1))


def test_bad_holiday_date_is_named(tmp_path):
    def change(d):
        d["holidays"][0]["date"] = "the 32nd"

    assert "holidays.0.date" in broken(tmp_path, change)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(DepartmentFileError, match="not found"):
        load_department(tmp_path / "nope.yml")
    with pytest.raises(DepartmentFileError, match="not valid YAML"):
        load_department(write(tmp_path, "faq: [unclosed"))
    with pytest.raises(DepartmentFileError, match="mapping"):
        load_department(write(tmp_path, "- a list\n"))


def test_cli_check_fails_with_the_field(tmp_path):
    import subprocess
    import sys

    data = copy.deepcopy(EXAMPLE)
    data["faq"]["careers"]["en"] = "Apply at {urls.jobz}"
    path = write(tmp_path, data)
    run = subprocess.run([sys.executable, "-m", "bot", "check", "--file", str(path)],
                         cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert run.returncode == 2
    assert "faq.careers" in run.stderr and "urls.jobz" in run.stderr
    assert run.stdout == ""


# -- issue 10: every text a citizen reads, in English and Spanish ---------------------------

def test_every_text_exists_in_every_language(department):
    assert department.languages == ["en", "es"]
    for topic in FAQ_TOPICS:
        english, spanish = department.faq_answer(topic, "en"), department.faq_answer(topic, "es")
        assert english != spanish and "{" not in spanish, topic
    for name in ("disclosure", "staff_soon", "nobody_now", "report_how", "throttled", "greet",
                 "urgent_flagged", "urgent_follow_up"):
        assert department.reply(name, "en") != department.reply(name, "es"), name
    assert department.canned("en").keys() == department.canned("es").keys()
    # Facts that are themselves texts follow the language.
    assert "lunes" in department.faq_answer("fingerprinting", "es")
    assert "lunes" in department.faq_answer("account_monitoring", "es")
    # A language the department does not answer in gets the default.
    assert department.faq_answer("careers", "fr") == department.faq_answer("careers", "en")


@pytest.mark.parametrize("section, key", [
    ("faq", "towed_vehicle"), ("canned_replies", "closing"), ("replies", "back_at"),
    ("replies", "disclosure")])
def test_a_missing_translation_is_named(tmp_path, section, key):
    message = broken(tmp_path, lambda d: d[section][key].pop("es"))
    assert f"{section}.{key}" in message and "missing es" in message


def test_a_missing_reply_and_a_language_without_texts_are_named(tmp_path):
    message = broken(tmp_path, lambda d: d["replies"].pop("throttled"))
    assert "replies.throttled" in message
    message = broken(tmp_path, lambda d: d.update(languages=["en", "es", "vi"]))
    assert "missing vi" in message
    assert "lobby_hours" in broken(tmp_path, lambda d: d["lobby_hours"].pop("es"))


def test_the_back_at_reply_must_say_when(tmp_path):
    def change(d):
        d["replies"]["back_at"]["es"] = "Volvemos pronto."

    message = broken(tmp_path, change)
    assert "replies.back_at" in message and "{when}" in message


def test_the_911_notice_can_be_extended_but_not_replaced(tmp_path):
    import datetime as dt

    from bot.replies import EMERGENCY_NOTICE, render_replies
    from bot.triage import Decision, Outcome

    data = copy.deepcopy(EXAMPLE)
    data["replies"]["notice_extra"] = {"en": "Our dispatch center: {phones.non_emergency}.",
                                       "es": "Nuestro centro de despacho: {phones.non_emergency}."}
    department = load_department(write(tmp_path, data))
    replies = render_replies(Decision(Outcome.EMERGENCY, None, "test"), department,
                             monitoring=True, now=dt.datetime.now(dt.timezone.utc),
                             language="es")
    assert replies[:2] == [EMERGENCY_NOTICE["es"], EMERGENCY_NOTICE["en"]]
    assert "Nuestro centro de despacho: (555) 201-4400." in replies
    # There is no key that replaces the notice itself.
    assert "extra_stuff" in broken(tmp_path, lambda d: d["replies"].update(extra_stuff={}))
