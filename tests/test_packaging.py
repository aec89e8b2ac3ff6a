"""The installed package, not the checkout, carries and loads the grammars."""

import subprocess
import sys
import zipfile

from tests.cli_helpers import ROOT


class TestWheel:
    def test_the_installed_wheel_loads_its_own_grammars(self, tmp_path):
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(ROOT)],
            check=True, capture_output=True, timeout=300,
        )
        [wheel] = (tmp_path / "dist").glob("kamlog-*.whl")
        names = zipfile.ZipFile(wheel).namelist()
        shipped = {n for n in names if n.startswith("kamlog/grammars/")}
        assert {f"kamlog/grammars/{p.name}" for p in (ROOT / "grammars").glob("*.toml")} == shipped
        site = tmp_path / "site"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
            check=True, capture_output=True, timeout=300,
        )
        probe = (
            "import kamlog, kamlog.parsing.grammar as g;"
            "print(kamlog.__file__); print(g.grammar_dir()); print(len(g.all_grammars()))"
        )
        result = subprocess.run(
            [sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=60,
        )
        module, directory, count = result.stdout.split()
        assert module.startswith(str(site)) and directory == str(site / "kamlog" / "grammars")
        assert int(count) == len(list((ROOT / "grammars").glob("*.toml"))) - 1  # _base.toml holds definitions
