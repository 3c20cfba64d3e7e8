"""Operator conveniences of the command line: `crossbill --version` and the shell completion
script generated from the parser (sourced in a real bash, it completes commands, options and
choices)."""

from __future__ import annotations

import pathlib
import platform
import shutil
import subprocess
from importlib import metadata

import pytest

from node.cli import main as cli
from protocol.versions import IMPLEMENTED_VERSION, VERSIONS

BASH_TIMEOUT_S = 30


def test_version_names_the_build_and_what_it_speaks(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"crossbill {metadata.version('crossbill')}"
    assert lines[1].startswith(f"protocol versions 1-{IMPLEMENTED_VERSION} ")
    for v in VERSIONS:
        assert f"  {v.number}: {v.title}" in lines
    assert f"python {platform.python_version()} ({platform.python_implementation()})" in lines
    assert f"libp2p {metadata.version('libp2p')}" in lines


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("completion") / "crossbill.bash"
    with open(path, "w") as out, pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdout", out)
        assert cli.main(["completion", "bash"]) == 0
    return path


def complete_in_bash(script: pathlib.Path, *words: str) -> list[str]:
    """What bash offers for the last of `words` after `crossbill`, through the completion
    function the script registers (`complete -p` names it)."""
    bash = shutil.which("bash")
    assert bash is not None, "bash is needed to check the completion script"
    quoted = " ".join(f"'{w}'" for w in ("crossbill", *words))
    program = f"""
        source '{script}'
        spec=$(complete -p crossbill) || exit 3
        func=${{spec#*-F }}; func=${{func%% *}}
        COMP_WORDS=({quoted}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
        COMP_LINE="${{COMP_WORDS[*]}}"; COMP_POINT=${{#COMP_LINE}}; COMPREPLY=()
        "$func" crossbill "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    done = subprocess.run([bash, "--norc", "--noprofile", "-c", program], capture_output=True,
                          text=True, timeout=BASH_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


def test_bash_completion_completes_commands_options_and_choices(
        bash_script: pathlib.Path) -> None:
    text = bash_script.read_text()
    assert text.endswith("\n") and "complete " in text
    assert complete_in_bash(bash_script, "ba") == ["backup"]
    assert "completion" in complete_in_bash(bash_script, "")
    assert complete_in_bash(bash_script, "backup", "create", "--na") == ["--name"]
    assert complete_in_bash(bash_script, "completion", "") == ["bash", "zsh", "tcsh"]
    assert complete_in_bash(bash_script, "config", "reference", "--o") == ["--out"]


def test_bash_completion_offers_files_for_path_arguments(
        bash_script: pathlib.Path, tmp_path: pathlib.Path) -> None:
    (tmp_path / "node.toml").write_text("")
    got = complete_in_bash(bash_script, "ledger", "compact", "--config",
                           str(tmp_path / "no"))
    assert got == [str(tmp_path / "node.toml")]


@pytest.mark.parametrize(("shell", "registers"), [("zsh", "#compdef crossbill"),
                                                  ("tcsh", "complete crossbill")])
def test_other_shells_get_a_script(shell: str, registers: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["completion", shell]) == 0
    out = capsys.readouterr().out
    assert registers in out and "backup" in out and "--config" in out


def test_an_unknown_shell_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["completion", "fish"])
    assert exited.value.code == 2
    assert "invalid choice: 'fish'" in capsys.readouterr().err
