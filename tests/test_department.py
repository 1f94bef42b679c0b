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
        d["faq"]["pay_citation"] = "Pay at {urls.citashuns}."

    message = broken(tmp_path, change)
    assert "faq.pay_citation" in message and "urls.citashuns" in message


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
    data["faq"]["careers"] = "Apply at {urls.jobz}"
    path = write(tmp_path, data)
    run = subprocess.run([sys.executable, "-m", "bot", "check", "--file", str(path)],
                         cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert run.returncode == 2
    assert "faq.careers" in run.stderr and "urls.jobz" in run.stderr
    assert run.stdout == ""
