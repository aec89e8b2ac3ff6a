from pathlib import Path

from kamlog.discover import find_log


def touch(root: Path, path: str) -> Path:
    full = root / path.lstrip("/")
    full.parent.mkdir(parents=True, exist_ok=True)
    full.write_text("x\n")
    return full


class TestFindLog:
    def test_a_dedicated_kamailio_log_comes_before_syslog(self, tmp_path):
        touch(tmp_path, "/var/log/syslog")
        dedicated = touch(tmp_path, "/var/log/kamailio.log")
        found = find_log(str(tmp_path))
        assert found is not None and found.paths == (str(dedicated),)
        assert found.description == f"{dedicated} (Kamailio's log)"

    def test_a_directory_of_logs_is_followed_as_a_glob(self, tmp_path):
        touch(tmp_path, "/var/log/kamailio/proxy.log")
        found = find_log(str(tmp_path))
        assert found is not None and found.paths == (str(tmp_path / "var/log/kamailio/*.log"),)

    def test_syslog_is_read_for_kamailios_lines_only(self, tmp_path):
        messages = touch(tmp_path, "/var/log/messages")
        found = find_log(str(tmp_path))
        assert found is not None and found.description == f"{messages} (Kamailio's lines only)"
