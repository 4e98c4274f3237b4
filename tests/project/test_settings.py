"""The one settings model (zoo.project.settings): every option declared once, with the same names, defaults,
validation and project root in the pytest plugin and in every `kdbench` command; usage errors exit 2, bugs keep
their traceback."""
import argparse

import pytest

from zoo import cli
from zoo.errors import KdbenchInputError
from zoo.project.settings import OPTIONS, SESSION_OPTIONS, Settings, SettingsError, parse_device, parse_seeds
from zoo.runs.commands import argparse_parent


@pytest.mark.parametrize("text", ["0", "-1", ",", "3,", "0,0,0", "1,-2", "1.5", "", "a"])
def test_bad_seeds_are_errors_naming_the_option(text):
    with pytest.raises(SettingsError, match="--seeds"):
        parse_seeds(text)


def test_seeds_as_a_count_or_a_list():
    assert parse_seeds(None) is None
    assert parse_seeds("2") == 2
    assert parse_seeds("0,4, 7") == (0, 4, 7)
    settings = Settings.build({"seeds": "0,4"})
    assert settings.seeds_for(3) == [0, 4]
    assert Settings.build({}).seeds_for(3) == [0, 1, 2]


@pytest.mark.parametrize("text", ["tpu", "mps", "cuda:x", "gpu", "cuda:"])
def test_unsupported_devices_name_the_choices(text):
    with pytest.raises(SettingsError, match="auto, cpu, cuda, cuda:N"):
        parse_device(text)


def test_a_device_this_machine_lacks_is_an_error(monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for text in ("cuda", "cuda:0"):
        with pytest.raises(SettingsError, match="0 CUDA device"):
            Settings.build({"device": text}).torch_device()
    assert Settings.build({}).torch_device() == torch.device("cpu")


def test_defaults_and_environment_are_the_same_for_pytest_and_every_command(monkeypatch, tmp_path):
    monkeypatch.setenv("KDBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("KDBENCH_CACHE", str(tmp_path / "cache"))
    launch = argparse.ArgumentParser(parents=[argparse_parent()])
    from_cli = Settings.build(launch.parse_args(["--out", str(tmp_path)]))
    from_pytest = Settings.build({})  # what the plugin builds from a session given no option
    for settings in (from_cli, from_pytest):
        assert (settings.tier, settings.device) == ("quick", "auto")
        assert settings.data_root == tmp_path / "data" and settings.cache_dir == tmp_path / "cache"


def test_every_session_option_is_a_pytest_option_and_a_launch_argument(pytestconfig):
    parser = cli.parser()
    launch = parser._subparsers._group_actions[0].choices["launch"]  # noqa: SLF001 (argparse keeps them here)
    flags = {flag for action in launch._actions for flag in action.option_strings}
    for name in SESSION_OPTIONS:
        option = OPTIONS[name]
        assert option.flag in flags, f"kdbench launch lacks {option.flag}"
        assert pytestconfig.getoption(option.flag, default="missing") != "missing" or option.switch


def test_full_contradicting_tier_is_an_error():
    assert Settings.build({"full": True}).tier == "full"
    with pytest.raises(SettingsError, match="--full contradicts --tier fast"):
        Settings.build({"full": True, "tier": "fast"})
    with pytest.raises(SettingsError, match="--tier 'huge'"):
        Settings.build({"tier": "huge"})


def test_a_command_from_a_subfolder_judges_by_the_projects_settings(tmp_path):
    (tmp_path / "baselines").mkdir()
    (tmp_path / "kdbench.toml").write_text("alpha_fail = 0.002\n")
    deep = tmp_path / "src" / "deeper"
    deep.mkdir(parents=True)
    settings = Settings.build({}, start=deep)
    assert settings.project == tmp_path.resolve()
    assert settings.baselines_dir == tmp_path.resolve() / "baselines"
    assert settings.thresholds.project_wide()["alpha_fail"].value == 0.002


def test_a_bad_project_setting_is_an_error_naming_the_file_and_key(tmp_path):
    (tmp_path / "baselines").mkdir()
    (tmp_path / "kdbench.toml").write_text('select_rows = "mine-*"\n')
    with pytest.raises(KdbenchInputError, match=r"kdbench.toml: select_rows must be a list"):
        Settings.build({}, start=tmp_path)


def test_kdbench_exits_2_on_a_usage_error_and_keeps_a_bugs_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["compare", "no-such-session"]) == 2
    assert "kdbench compare: error: no history store" in capsys.readouterr().err

    def buggy(args, history):
        raise ValueError("a bug in kdbench, not the user's input")

    monkeypatch.setattr(cli, "cmd_rows", buggy)
    with pytest.raises(ValueError, match="a bug in kdbench"):
        cli.main(["rows"])
