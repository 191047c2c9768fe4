"""The governance command line, end to end on a real store (SQLite, and PostgreSQL when set).

Every command that acts for a user does so only on a credential (``openlfr login NAME``, or
``OPENLFR_TOKEN``); there is no way to name a user. The parties are built as real ones are:
the host and its first admin at the machine, the others registered at the machine and
enrolled by their own admins with a one-time token, every other user made by their own
organisation's admin. Each rule test names the rule it pins.
"""

from __future__ import annotations

import json
import re
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from click.testing import Result
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from openlfr import audit
from openlfr.cli import credentials as cli_credentials, register_all, store as cli_store
from openlfr.governance import credentials
from openlfr.store import make_engine
from openlfr.store.models import Agreement, ApiToken, AuditEvent, Deployment, SharedImage, User

from govkit import as_image, fake_template
from openlfr.config import get_settings

PW = "a password for tests"
# a site operator's deployment grounds on the command line
GROUNDS = ["--legal-basis", "ukgdpr_a6_1f_a9_2g_sch1_para10", "--dpia", "D-1", "--dpia-date", "2024-06-03",
           "--eia-ref", "EIA-1", "--eia-date", "2024-06-03",
           "--necessity", "Serious violent offences continue here and patrols have not located the suspects.",
           "--proportionality", "Only wanted people are listed; other faces are discarded at once and signs warn."]
NOT_LOGGED_IN = "error: log in first: openlfr login NAME (or set OPENLFR_TOKEN)"
ESTATE, FORCE, OVERSIGHT = "Estate Ltd", "Met Police", "ICO"
runner = CliRunner()


class Cli:
    """Runs ``openlfr`` commands in-process against the test store."""

    def __init__(self, app: typer.Typer, db_url: str, creds: Path) -> None:
        self.app, self.db_url, self.creds = app, db_url, creds

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(self.app, list(args), env=env)

    def ok(self, *args: str, env: dict[str, str] | None = None) -> str:
        result = self.run(*args, env=env)
        assert result.exit_code == 0, f"{args}: {result.output}"
        return result.output

    def refused(self, *args: str, match: str, env: dict[str, str] | None = None) -> Result:
        """Exit 2 with one ``error:`` line containing ``match``."""
        result = self.run(*args, env=env)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2, f"{args}: {result.output}"
        assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0], f"{args}: {result.output}"
        return result

    def fails(self, *args: str, match: str, env: dict[str, str] | None = None) -> Result:
        """Exit 2, the last line an ``error:`` containing ``match`` (after a warning on stderr)."""
        result = self.run(*args, env=env)
        last = result.output.strip().splitlines()[-1]
        assert result.exit_code == 2 and last.startswith("error:") and match in last, f"{args}: {result.output}"
        return result

    def login(self, name: str) -> None:
        assert f"logged in as {name}" in self.ok("login", name)

    def keep(self) -> None:
        """Forget the saved credential without revoking it (so the next login leaves it live)."""
        self.creds.unlink()

    def saved(self) -> list[str]:
        """The names with a credential saved in the file."""
        if not self.creds.exists():
            return []
        return [e["name"] for e in json.loads(self.creds.read_text())["stores"].values()]

    def token(self) -> str:
        return next(iter(json.loads(self.creds.read_text())["stores"].values()))["token"]

    def session(self) -> Session:
        return Session(make_engine(self.db_url))

    def events(self, action: str) -> list[AuditEvent]:
        with self.session() as s:
            return list(s.execute(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
                        .scalars())

    def count(self, model: type) -> int:
        with self.session() as s:
            return s.execute(select(func.count()).select_from(model)).scalar_one()

    def user(self, name: str) -> User:
        with self.session() as s:
            return s.execute(select(User).where(User.name == name)).scalar_one()


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("OPENLFR_DATABASE_URL", db_url)
    monkeypatch.setenv("OPENLFR_CREDENTIALS_FILE", str(tmp_path / "config" / "credentials.json"))
    monkeypatch.setenv("OPENLFR_PASSWORD", PW)  # the password of everyone logging in
    monkeypatch.setenv("OPENLFR_NEW_PASSWORD", PW)  # ... and of every user made
    for name in ("OPENLFR_TOKEN", "OPENLFR_USER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cli_store, "_template_fn", lambda: fake_template)
    main = typer.Typer()

    @main.callback()
    def _root() -> None:
        """openlfr (test)"""

    register_all(main)
    return Cli(main, db_url, tmp_path / "config" / "credentials.json")


def enrolment_token(output: str) -> str:
    return re.search(r"enrolment token: (enrol-\S+)", output).group(1)


@pytest.fixture
def parties(cli: Cli, store_snapshots) -> Cli:  # noqa: ANN001
    """The estate (host, with its admin made at the machine), a police force and an oversight
    body (registered at the machine, their admins enrolled by token), and their users made by
    their own admins. Nobody is logged in afterwards. Built by these commands once per
    database kind, then copied into each test's fresh store (``store_snapshots``)."""
    home = Path(get_settings().data_dir)
    store_snapshots.restore_or_build("gov-cli-parties", cli.db_url, [home], lambda: make_parties(cli), max_age_s=300)
    assert not cli.saved()
    return cli


def make_parties(cli: Cli) -> Cli:
    """The commands :func:`parties` runs on a new store."""
    cli.ok("admin", "create", "estate-admin", "--org", ESTATE)
    for org, kind, admin in ((FORCE, "police_force", "force-admin"), (OVERSIGHT, "oversight_body", "ico-admin")):
        cli.ok("enrol", enrolment_token(cli.ok("org", "register", org, "--kind", kind)), admin)
    for admin, made in (("force-admin", [("met", "supplier"), ("ao", "authorising_officer", "superintendent")]),
                        ("estate-admin", [("alice", "operator_admin"), ("ruth", "reviewer")]),
                        ("ico-admin", [("dpo", "auditor")])):
        cli.login(admin)
        for name, role, *rank in made:
            cli.ok("user", "add", name, "--role", role, *(["--rank", rank[0]] if rank else []))
    cli.ok("logout")
    return cli


def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC).replace(microsecond=0) + delta).isoformat()


def draft_agreement(cli: Cli) -> None:
    """Agreement 1, a draft offered by the force's supplier to the estate (leaves met logged in)."""
    cli.login("met")
    assert "agreement 1 created" in cli.ok(
        "agreement", "create", "--operator", ESTATE, "--purpose", "warrants", "--lawful-basis", "DPA 2018 s.35",
        "--from", _iso(-timedelta(hours=1)), "--until", _iso(timedelta(days=10)), "--limit", "5",
        "--category", "wanted_by_court")


def share_args(image: Path) -> list[str]:
    return ["share", "add", "1", str(image), "--category", "wanted_by_court", "--warrant-ref", "WA-2029-00123",
            "--reason", "warrant 1", "--subject", "S-1",
            "--image-date", "2025-01-01"]


# ---------------------------------------------------------------- the whole flow, each party as itself
@pytest.mark.slow_on_postgres
def test_cli_full_flow(parties: Cli, tmp_path: Path) -> None:
    cli = parties
    draft_agreement(cli)
    cli.login("ao")
    assert "agreement 1 is active" in cli.ok("agreement", "approve", "1")
    cli.login("met")
    image = tmp_path / "face.jpg"
    image.write_bytes(as_image(b"pretend jpeg"))
    # the image gate at the CLI door: another format, a header claiming 30000x30000 pixels
    gif = tmp_path / "face.gif"
    gif.write_bytes(b"GIF89a" + bytes(200))
    cli.refused(*share_args(gif), match="not a JPEG or PNG image")
    bomb = tmp_path / "bomb.png"
    chunks = [b"IHDR" + (30000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0]), b"IDAT" + zlib.compress(bytes(1000))]
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join(
        (len(c) - 4).to_bytes(4, "big") + c + zlib.crc32(c).to_bytes(4, "big") for c in chunks))
    cli.refused(*share_args(bomb), match="megapixel")
    assert "image 1 shared" in cli.ok(*share_args(image))
    cli.refused(*share_args(image), match="already shared")
    cli.login("alice")
    day = datetime.now(UTC).date().isoformat()
    cli.ok("camera", "add", "gate", "--location", "north gate")
    cli.ok("deployment", "watchlist-create", "wl", "--criteria", "warrants", "--category", "wanted_by_court",
           "--cap", "10")
    cli.ok("deployment", "watchlist-add", "1", "1", "--label", "person", "--reason", "warrant",
           "--review-date", _iso(timedelta(days=7))[:10])
    assert "deployment 1 requested (live, threshold 0.6)" in cli.ok(
        "deployment", "request", "--purpose", "find wanted", "--watchlist", "1", "--camera", "1",
        "--start", _iso(-timedelta(minutes=1)), "--end", _iso(timedelta(hours=2)), "--threshold", "0.6", *GROUNDS)
    cli.refused("deployment", "authorise", "1", match="authorising_officer")
    cli.login("ao")
    assert re.search(r"sha256 [0-9a-f]{64}", cli.ok("deployment", "authorise", "1"))
    cli.login("alice")
    cli.ok("camera", "signage", "1", "--deployment", "1", "--text", "Live facial recognition in use",
           "--checked-on", day)
    cli.ok("deployment", "start", "1")
    cli.refused("deployment", "threshold", "1", "0.5", match="locked")
    assert "status=live" in cli.ok("deployment", "list")
    assert "NONE CURRENT" not in cli.ok("camera", "list")
    cli.login("met")
    assert "status=live" in cli.ok("share", "list")
    view = json.loads(cli.ok("force", "view", "--json"))
    assert view["force"] == FORCE and [a["status"] for a in view["agreements"]] == ["active"]
    assert {u["kind"] for u in view["images"][0]["uses"]} == {"watchlist", "deployment"}
    assert [d["status"] for d in view["deployments"]] == ["live"]
    assert "deployment 1" in cli.ok("force", "view")
    cli.ok("agreement", "end", "1", "--reason", "operation over")
    cli.login("dpo")  # an oversight body's auditor names the force
    assert "status=purged" in cli.ok("share", "list", "--force", FORCE)
    cli.refused("force", "view", match="must name the force")
    assert "deletion_reason" in cli.ok("force", "view", "--force", FORCE)
    cli.ok("logout")

    # the audit log is the machine's: verified and exported without logging in
    export = tmp_path / "audit.jsonl"
    verified = cli.ok("audit", "verify")
    assert "chain OK" in verified and "store matches the audit log" in verified
    seq, digest = re.search(r"head #(\d+) ([0-9a-f]{64})", cli.ok("audit", "export", str(export))).groups()
    assert "chain OK" in cli.ok("audit", "verify", "--export", str(export), "--head", f"{seq}:{digest}")
    wrong = cli.run("audit", "verify", "--head", f"{seq}:{'0' * 64}")
    assert wrong.exit_code == 1 and f"BROKEN at event #{seq}" in wrong.output
    assert [e.actor for e in cli.events("agreement.approve")] == ["ao"]
    assert [e.actor for e in cli.events("image.share")] == ["met"]
    engine = make_engine(cli.db_url)
    with engine.begin() as conn:  # outside the chain: a loosened threshold
        conn.execute(text("UPDATE deployments SET threshold = 0.01 WHERE id = 1"))
    differs = cli.run("audit", "verify")
    assert differs.exit_code == 1 and "chain OK" in differs.output and "deployment 1: threshold 0.01" in differs.output
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 5"))
    engine.dispose()
    broken = cli.run("audit", "verify")
    assert broken.exit_code == 1 and "BROKEN at event #5" in broken.output


def test_cli_bad_input_is_one_line(parties: Cli) -> None:
    cli = parties
    cli.login("alice")
    cli.refused("agreement", "approve", "99", match="")
    cli.login("met")  # the caller is checked before the fields
    cli.refused("agreement", "create", "--operator", "x", "--purpose", "p", "--lawful-basis", "b",
                "--from", "2030-02-01", "--until", "2030-01-01", "--limit", "1", "--category", "wanted_by_court",
                match="valid_until must be after valid_from")
    cli.login("estate-admin")
    cli.refused("user", "add", "bob", "--role", "wizard", match="--role must be one of")
    users = cli.count(User)
    cli.refused("user", "add", "bob", "--role", "reviewer", match="at least 10 characters",
                env={"OPENLFR_NEW_PASSWORD": "short"})
    assert cli.count(User) == users


# ---------------------------------------------------------------- (a) no credential, no action
COMMANDS = [
    ["user", "add", "mallory", "--role", "reviewer"], ["user", "list"], ["user", "deactivate", "ao", "--reason", "x"],
    ["user", "password", "met"], ["user", "role", "met", "--role", "reviewer"], ["passwd"],
    ["agreement", "approve", "1"], ["agreement", "end", "1", "--reason", "x"], ["agreement", "list"],
    ["share", "list"], ["share", "revoke", "1", "--reason", "x"], ["force", "view"],
    ["camera", "add", "cam", "--location", "x"], ["camera", "list"],
    ["deployment", "watchlist-create", "wl", "--criteria", "c", "--category", "wanted_by_court"],
    ["deployment", "authorise", "1"],
    ["deployment", "list"],
]


def test_a_command_without_a_credential_is_refused_and_changes_nothing(parties: Cli) -> None:
    cli = parties
    draft_agreement(cli)
    cli.ok("logout")
    users, before = cli.count(User), cli.count(AuditEvent)
    for command in COMMANDS:
        result = cli.refused(*command, match="")
        assert result.output == NOT_LOGGED_IN + "\n", command
    assert cli.count(AuditEvent) == before + len(COMMANDS)  # one refusal each, and nothing else
    refusals = cli.events("agreement.approve.refused")
    assert [e.actor for e in refusals] == ["unverified:-"]
    assert "no credential" in json.loads(refusals[0].details)["reason"]
    assert cli.count(User) == users and cli.user("ao").active
    with cli.session() as s:
        assert s.get(Agreement, 1).status == "draft" and audit.verify(s).ok
    cli.refused("whoami", match="log in first")


def test_forged_expired_and_revoked_credentials_are_refused(parties: Cli) -> None:
    cli = parties
    draft_agreement(cli)
    cli.ok("logout")
    # forged
    cli.refused("agreement", "approve", "1", match="credential is not valid", env={"OPENLFR_TOKEN": "forged-token"})
    # expired (the saved credential, whose name is only a claim)
    cli.login("ao")
    with cli.session() as s, s.begin():
        s.execute(update(ApiToken).where(ApiToken.token_sha256 == credentials.token_digest(cli.token()))
                  .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    cli.refused("agreement", "approve", "1", match="credential is not valid")
    # revoked by logging out
    cli.login("ao")
    token = cli.token()
    assert "revoked" in cli.ok("logout")
    assert cli.saved() == []
    cli.refused("agreement", "approve", "1", match="credential is not valid", env={"OPENLFR_TOKEN": token})
    refusals = cli.events("agreement.approve.refused")
    assert [e.actor for e in refusals] == ["unverified:-", "unverified:ao", "unverified:-"]
    with cli.session() as s:
        assert s.get(Agreement, 1).status == "draft"
    # and a deactivated user's credential stops at once
    cli.login("ao")
    token = cli.token()
    cli.keep()
    cli.login("force-admin")
    cli.ok("user", "deactivate", "ao", "--reason", "left the force")
    cli.refused("agreement", "approve", "1", match="credential is not valid", env={"OPENLFR_TOKEN": token})
    with cli.session() as s:
        assert s.get(Agreement, 1).status == "draft"


# ---------------------------------------------------------------- (b) no acting by name
def test_as_and_openlfr_user_are_gone(parties: Cli) -> None:
    cli = parties
    draft_agreement(cli)
    cli.ok("logout")
    for command in (["agreement", "approve", "1", "--as", "ao"], ["user", "add", "x", "--role", "reviewer", "--as",
                                                                   "estate-admin"]):
        result = cli.run(*command)
        assert result.exit_code == 2 and "No such option: --as" in result.output
    result = cli.run("agreement", "approve", "1", env={"OPENLFR_USER": "ao"})
    assert result.exit_code == 2 and result.output == NOT_LOGGED_IN + "\n"
    with cli.session() as s:
        assert s.get(Agreement, 1).status == "draft"


# ---------------------------------------------------------------- (c) admins manage their own organisation only
def test_estate_admin_cannot_touch_police_users_or_make_police_roles(parties: Cli) -> None:
    cli = parties
    cli.login("estate-admin")
    users = cli.count(User)
    cli.refused("user", "add", "my-supplier", "--role", "supplier", match="a site operator cannot have a supplier")
    cli.refused("user", "add", "my-ao", "--role", "authorising_officer", "--rank", "superintendent",
                match="a site operator cannot have a authorising_officer")
    result = cli.run("user", "add", "x", "--role", "supplier", "--org", FORCE)
    assert result.exit_code == 2 and "No such option: --org" in result.output
    cli.refused("user", "deactivate", "ao", "--reason", "gone", match="whose own admins alone manage its users")
    cli.refused("user", "password", "met", match="whose own admins alone manage its users",
                env={"OPENLFR_NEW_PASSWORD": "the estate chose this"})
    cli.refused("user", "role", "met", "--role", "reviewer", match="whose own admins alone manage its users")
    assert cli.count(User) == users
    assert cli.user("ao").active and cli.user("met").role == "supplier"
    for action in ("user.create", "user.deactivate", "user.password", "user.role"):
        assert {e.actor for e in cli.events(f"{action}.refused")} == {"estate-admin"}, action
    cli.login("met")  # the supplier's own password still works: it was not reset
    # an operator admin is not a user admin, even of its own organisation
    cli.login("alice")
    cli.refused("user", "add", "x", "--role", "reviewer", match="needs role admin")
    # the force's own admin manages the force's users
    cli.login("force-admin")
    cli.ok("user", "role", "met", "--role", "auditor")
    cli.ok("user", "password", "met", env={"OPENLFR_NEW_PASSWORD": "the force chose this"})
    cli.ok("user", "deactivate", "ao", "--reason", "retired")
    listing = cli.ok("user", "list")
    assert "name=met  role=auditor" in listing and "estate-admin" not in listing
    assert not cli.user("ao").active


# ---------------------------------------------------------------- structured grounds, refusal, urgency
def _requestable(cli: Cli, tmp_path: Path) -> list[str]:
    """An approved agreement, one shared image on watchlist 1 and camera 1 with signage; the
    request's arguments without its grounds (leaves alice logged in)."""
    draft_agreement(cli)
    cli.login("ao")
    cli.ok("agreement", "approve", "1")
    cli.login("met")
    image = tmp_path / "face.jpg"
    image.write_bytes(as_image(b"pretend jpeg"))
    cli.ok(*share_args(image))
    cli.login("alice")
    cli.ok("camera", "add", "gate", "--location", "north gate")
    cli.ok("camera", "signage", "1", "--text", "Facial recognition in use")
    cli.ok("deployment", "watchlist-create", "wl", "--criteria", "warrants", "--category", "wanted_by_court",
           "--cap", "10")
    cli.ok("deployment", "watchlist-add", "1", "1", "--label", "person", "--reason", "warrant",
           "--review-date", _iso(timedelta(days=3))[:10])
    return ["deployment", "request", "--purpose", "find wanted", "--watchlist", "1", "--camera", "1",
            "--start", _iso(-timedelta(minutes=1)), "--end", _iso(timedelta(hours=2)), "--threshold", "0.6"]


def _with(grounds: list[str], option: str, value: str) -> list[str]:
    out = list(grounds)
    out[out.index(option) + 1] = value
    return out


def test_cli_deployment_grounds_refused_and_audited(parties: Cli, tmp_path: Path) -> None:
    cli = parties
    request = _requestable(cli, tmp_path)
    future = _iso(timedelta(days=2))[:10]
    for grounds, match in [
        (_with(GROUNDS, "--legal-basis", "DPA 2018 s.35"), "legal_basis"),
        (_with(GROUNDS, "--legal-basis", "dpa2018_s35_sch8_para1"), "only a police force"),
        (_with(GROUNDS, "--dpia", "none"), "DPIA reference"),
        (_with(GROUNDS, "--dpia-date", future), "after today"),
        (_with(GROUNDS, "--necessity", "necessary and proportionate"), "necessity statement"),
        (GROUNDS + ["--urgent"], "urgency_reason"),
    ]:
        cli.refused(*request, *grounds, match=match)
    assert cli.count(Deployment) == 0
    assert len(cli.events("deployment.request.refused")) == 6  # each refusal audited
    cli.refused(*request[:-4], "--end", _iso(timedelta(hours=100)), "--threshold", "0.6", *GROUNDS, match="at most")
    cli.ok(*request, *GROUNDS)
    shown = cli.ok("deployment", "show", "1")  # the composition, before authorising
    assert "composition: 1 entries" in shown and "due for review within 7 days: entry 1 on" in shown
    assert "legal_basis: ukgdpr_a6_1f_a9_2g_sch1_para10" in shown
    listed = json.loads(cli.ok("deployment", "list", "--json"))
    assert listed[0]["composition"]["entries"] == 1 and listed[0]["legal_basis"].startswith("ukgdpr")
    cli.login("ao")
    cli.refused("deployment", "refuse", "1", "--reason", " ", match="reason")
    assert "deployment 1 refused" in cli.ok("deployment", "refuse", "1", "--reason", "too broad a watchlist")
    assert json.loads(cli.events("deployment.refuse")[0].details)["reason"] == "too broad a watchlist"
    cli.refused("deployment", "authorise", "1", match="only a requested one")


def test_cli_watchlist_hygiene_refused_and_audited(parties: Cli, tmp_path: Path) -> None:
    """Categories, warrant and subject references, the watchlist's categories and signage per
    deployment at the command line: one error line, nothing stored, the refusal audited."""
    cli = parties
    request = _requestable(cli, tmp_path)  # image 1 (wanted_by_court) on watchlist 1, camera 1
    cli.login("met")
    image = tmp_path / "other.png"
    image.write_bytes(as_image(b"another face"))
    for swap, match in [(("--category", "wanted"), "category"),
                        (("--warrant-ref", ""), "warrant or court reference refused"),
                        (("--subject", "Tom Ridge, dob 1945-08-26"), "subject reference refused")]:
        args = share_args(image)
        args[args.index(swap[0]) + 1] = swap[1]
        images, refusals = cli.count(SharedImage), len(cli.events("image.share.refused"))
        cli.refused(*args, match=match)
        assert cli.count(SharedImage) == images and len(cli.events("image.share.refused")) == refusals + 1
    cli.login("alice")
    cli.refused("deployment", "watchlist-create", "wl2", "--criteria", "c", "--category", "wanted-violent",
                match="categories")
    assert len(cli.events("watchlist.create.refused")) == 1
    cli.ok("deployment", "watchlist-create", "wl2", "--criteria", "people at risk", "--category", "missing_at_risk")
    cli.refused("deployment", "watchlist-add", "2", "1", "--label", "p", "--reason", "r",
                "--review-date", _iso(timedelta(days=3))[:10], match="not among the categories")
    cli.ok(*request, *GROUNDS)
    cli.login("ao")
    cli.ok("deployment", "authorise", "1")
    cli.login("alice")
    cli.refused("deployment", "start", "1", match="no signage check recorded for deployment 1")
    old = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    for extra, match in [(["--text", "Facial recognition in use", "--checked-on", old], "before it is recorded"),
                         (["--text", "CCTV in operation"], "facial recognition")]:
        cli.refused("camera", "signage", "1", "--deployment", "1", *extra, match=match)
    assert len(cli.events("signage.record.refused")) == 2
    photo = tmp_path / "sign.png"
    photo.write_bytes(as_image(b"a photo of the notice"))
    out = cli.ok("camera", "signage", "1", "--deployment", "1", "--text", "Live facial recognition in use",
                 "--photo", str(photo))
    assert "for deployment 1, photo sha256" in out
    cli.ok("deployment", "start", "1")


def test_cli_urgent_deployment_and_its_review(parties: Cli, tmp_path: Path) -> None:
    cli = parties
    request = _requestable(cli, tmp_path)
    cli.login("force-admin")
    cli.ok("user", "add", "insp", "--role", "authorising_officer", "--rank", "inspector")
    cli.login("alice")
    cli.ok(*request, *GROUNDS, "--urgent", "--urgency-reason", "A violent suspect was seen at the gate an hour ago.")
    cli.login("insp")
    assert "must review it by" in cli.ok("deployment", "authorise", "1")
    cli.refused("deployment", "review", "1", "--outcome", "upheld", "--note", "mine", match="cannot review")
    cli.login("ao")
    cli.refused("deployment", "review", "1", "--outcome", "maybe", "--note", "x", match="upheld or ended")
    assert "review: ended; it is cancelled" in cli.ok("deployment", "review", "1", "--outcome", "ended",
                                                      "--note", "the suspect was found elsewhere")
    assert len(cli.events("deployment.retro_review.refused")) == 2


# ---------------------------------------------------------------- (d) King's Cross: one admin cannot do it all
def test_the_one_admin_chain_is_impossible_through_the_cli(parties: Cli, tmp_path: Path) -> None:
    """With the estate admin's credentials (and the staff it may make) every step that would
    complete a deployment without the police is refused."""
    cli = parties
    draft_agreement(cli)  # a real draft from the force, which the estate would need approved
    image = tmp_path / "face.jpg"
    image.write_bytes(as_image(b"someone the estate wants watched"))
    cli.login("estate-admin")
    cli.refused("user", "add", "my-ao", "--role", "authorising_officer", "--rank", "superintendent",
                match="cannot have")
    cli.refused("user", "add", "my-supplier", "--role", "supplier", match="cannot have")
    cli.ok("user", "add", "my-ops", "--role", "operator_admin")
    cli.ok("user", "add", "my-rev", "--role", "reviewer")
    cli.refused("admin", "create", "me-again", "--org", "Estate Police", "--kind", "police_force",
                match="already has users")
    cli.fails("admin", "break-glass", "ao", "--reason", "take over", match="limited to the host organisation")
    cli.refused("org", "token", FORCE, match="Met Police already has an admin")  # no admin minted at the machine
    for who in ("estate-admin", "my-ops", "my-rev"):
        cli.login(who)
        cli.refused("agreement", "create", "--operator", ESTATE, "--purpose", "anyone", "--lawful-basis",
                    "legitimate interests", "--from", _iso(timedelta()), "--until", _iso(timedelta(days=300)),
                    "--limit", "2000", "--category", "anyone", "--allow-under-18", match="needs role supplier")
        cli.refused("agreement", "approve", "1", match="needs role authorising_officer")
        cli.refused(*share_args(image), match="needs role supplier")
    cli.login("my-ops")
    cli.ok("deployment", "watchlist-create", "wl", "--criteria", "anyone", "--category", "missing_at_risk")
    cli.ok("camera", "add", "gate", "--location", "north gate")
    cli.ok("camera", "signage", "1", "--text", "Facial recognition in use")
    cli.ok("deployment", "request", "--purpose", "watch", "--watchlist", "1", "--camera", "1",
           "--start", _iso(-timedelta(minutes=1)), "--end", _iso(timedelta(hours=2)), "--threshold", "0.5", *GROUNDS)
    for who in ("estate-admin", "my-ops", "my-rev"):
        cli.login(who)
        cli.refused("deployment", "authorise", "1", match="needs role authorising_officer")
    cli.login("my-ops")
    cli.refused("deployment", "start", "1", match="only an authorised one can start")
    with cli.session() as s:
        assert s.get(Agreement, 1).status == "draft"
        assert s.get(Deployment, 1).status == "requested"
        assert s.execute(select(func.count()).select_from(SharedImage)).scalar_one() == 0
        assert audit.verify(s).ok


# ---------------------------------------------------------------- (e) rank
def test_an_officer_below_the_required_rank_cannot_approve(parties: Cli) -> None:
    cli = parties
    cli.login("force-admin")
    cli.refused("user", "add", "no-rank", "--role", "authorising_officer", match="needs a rank")
    cli.refused("user", "add", "general", "--role", "authorising_officer", "--rank", "general",
                match="unknown police rank")
    cli.ok("user", "add", "insp", "--role", "authorising_officer", "--rank", "inspector")
    draft_agreement(cli)
    cli.login("insp")
    cli.refused("agreement", "approve", "1", match="superintendent or above; insp is inspector")
    with cli.session() as s:
        assert s.get(Agreement, 1).status == "draft"
    assert [e.actor for e in cli.events("agreement.approve.refused")] == ["insp"]
    cli.login("force-admin")
    cli.ok("user", "role", "insp", "--role", "authorising_officer", "--rank", "chief_superintendent")
    cli.login("insp")
    assert "is active" in cli.ok("agreement", "approve", "1")


# ---------------------------------------------------------------- (f) break-glass
def test_break_glass_is_for_host_users_only_and_loud(parties: Cli) -> None:
    cli = parties
    cli.login("estate-admin")
    old_token = cli.token()
    result = cli.run("admin", "break-glass", "met", "--reason", "forgot", env={"OPENLFR_NEW_PASSWORD": "stolen pw 123"})
    assert result.exit_code == 2 and "limited to the host organisation" in result.stderr
    refused = cli.events("auth.break_glass.refused")
    assert len(refused) == 1 and refused[0].actor.startswith("machine:")
    cli.keep()
    cli.login("met")  # met's password is unchanged
    cli.fails("admin", "break-glass", "estate-admin", "--reason", " ", match="needs a reason")

    result = cli.run("admin", "break-glass", "estate-admin", "--reason", "lost the password",
                     env={"OPENLFR_NEW_PASSWORD": "a brand new password"})
    assert result.exit_code == 0, result.output
    assert "BREAK-GLASS" in result.stderr and "recorded in the audit log" in result.stderr
    done = cli.events("auth.break_glass")
    assert len(done) == 1 and done[0].actor.startswith("machine:")
    assert json.loads(done[0].details)["reason"] == "lost the password"
    cli.refused("user", "list", match="credential is not valid", env={"OPENLFR_TOKEN": old_token})
    cli.refused("login", "estate-admin", match="wrong name or password")
    cli.ok("login", "estate-admin", env={"OPENLFR_PASSWORD": "a brand new password"})
    assert "estate-admin" in cli.ok("user", "list")


# ---------------------------------------------------------------- (g) log in, credentials file
def test_login_with_a_wrong_password_is_refused_and_audited(parties: Cli) -> None:
    cli = parties
    for name in ("estate-admin", "nobody", "evil\x1b[31mname"):
        cli.refused("login", name, match="wrong name or password", env={"OPENLFR_PASSWORD": "not the password"})
    assert [e.actor for e in cli.events("auth.login.failed")] == [
        "unverified:estate-admin", "unverified:nobody", "unverified:evil?[31mname"]
    assert cli.saved() == []
    cli.login("estate-admin")
    assert [e.actor for e in cli.events("auth.cli")][-1] == "estate-admin"


def test_credentials_file_is_private_and_per_store(parties: Cli, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cli = parties
    cli.login("alice")
    assert cli.creds.stat().st_mode & 0o777 == 0o600
    assert PW not in cli.creds.read_text()
    assert "alice: operator admin of Estate Ltd" in cli.ok("whoami")
    first = cli.token()
    cli.login("met")  # logging in again ends the earlier credential
    cli.refused("camera", "list", match="credential is not valid", env={"OPENLFR_TOKEN": first})
    met = cli.token()
    cli.keep()
    cli.login("alice")
    assert "met: supplier of Met Police" in cli.ok("whoami", env={"OPENLFR_TOKEN": met})  # the variable wins
    # another store: the credential of this one is not used there
    monkeypatch.setenv("OPENLFR_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    assert cli.run("whoami").output == NOT_LOGGED_IN + "\n"
    monkeypatch.setenv("OPENLFR_DATABASE_URL", cli.db_url)
    assert "alice" in cli.ok("whoami")


def test_passwd_changes_only_your_own_and_ends_your_sessions(parties: Cli) -> None:
    cli = parties
    cli.login("ruth")
    cli.refused("passwd", match="current password is wrong",
                env={"OPENLFR_PASSWORD": "not my password", "OPENLFR_NEW_PASSWORD": "ruth's new password"})
    token = cli.token()
    assert "log in again" in cli.ok("passwd", env={"OPENLFR_NEW_PASSWORD": "ruth's new password"})
    cli.refused("whoami", match="log in first")
    cli.refused("camera", "list", match="credential is not valid", env={"OPENLFR_TOKEN": token})
    cli.ok("login", "ruth", env={"OPENLFR_PASSWORD": "ruth's new password"})


# ---------------------------------------------------------------- organisations at the machine
def test_organisations_register_enrol_and_tokens(cli: Cli) -> None:
    cli.refused("user", "list", match="log in first")
    cli.refused("admin", "create", "boss", "--org", ESTATE, "--kind", "army", match="--kind must be one of")
    cli.ok("admin", "create", "boss", "--org", ESTATE)
    result = cli.run("org", "register", "Kent Police", "--kind", "police_force")
    assert result.exit_code == 0
    first = enrolment_token(result.stdout)
    assert "OUT OF BAND" in result.stderr and "never again" in result.stderr and first not in result.stderr
    second = enrolment_token(cli.ok("org", "token", "Kent Police"))  # the first stops working
    cli.refused("enrol", first, "kent-admin", match="enrolment token is not valid")
    assert "enrolled kent-admin as an admin of Kent Police" in cli.ok("enrol", second, "kent-admin", "--rank",
                                                                      "superintendent")
    cli.refused("enrol", second, "kent-admin2", match="enrolment token is not valid")
    cli.refused("org", "register", "kent police", "--kind", "police_force", match="already exists")
    orgs = json.loads(cli.ok("org", "list", "--json"))
    assert [(o["name"], o["kind"], o["host"]) for o in orgs] == [(ESTATE, "site_operator", True),
                                                                 ("Kent Police", "police_force", False)]
    assert all(o["registered_by"].startswith("machine:") and o["first_admin_enrolled"] for o in orgs)
    assert [e.actor for e in cli.events("org.enrol")] == ["boss", "kent-admin"]
    assert [e.actor for e in cli.events("org.enrol.refused")] == ["unverified:kent-admin", "unverified:kent-admin2"]
    cli.login("kent-admin")
    cli.ok("user", "add", "kent-supplier", "--role", "supplier")
    assert "kent-supplier" in cli.ok("user", "list")


@pytest.mark.slow
def test_demo_setup_with_the_real_face_pipeline(cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one test that uses the real enrolment pipeline (LFW photos from the shared data)."""
    try:
        from openlfr.face.analyzer import enrolment_template
    except ImportError as err:
        pytest.skip(f"face pipeline not available yet: {err}")
    monkeypatch.setattr(cli_store, "_template_fn", lambda: enrolment_template)
    out = cli.ok("demo-setup", "--images", str(data_dir / "lfw"), "--count", "2", "--password", PW)
    assert "demo estate ready" in out and "chain OK" in out
    shared = [line for line in out.splitlines() if line.startswith("shared ")]  # Miranda and 2 LFW people
    assert len(shared) == 3 and "shared lin-manuel-miranda.png as image 1" in shared, out
    assert not cli.creds.exists()  # the demo's own sessions ended with it
    with cli.session() as s:
        assert not s.execute(select(ApiToken).where(ApiToken.revoked_at.is_(None))).first()
    cli.login("alice")
    assert "status=live" in cli.ok("deployment", "list")
    cli.login("met")
    assert "status=live" in cli.ok("share", "list")
    assert "already set up" in cli.ok("demo-setup", "--images", str(data_dir / "lfw"))  # a rerun: says so


def test_cli_deployment_request_with_a_target_false_alert_rate(
    parties: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = parties
    if not cli.db_url.startswith("sqlite"):
        pytest.skip("calibration does not depend on the database; run once")
    draft_agreement(cli)
    cli.login("ao")
    cli.ok("agreement", "approve", "1")
    image = tmp_path / "face.jpg"
    image.write_bytes(as_image(b"pretend jpeg"))
    cli.login("met")
    cli.ok(*share_args(image))
    cli.login("alice")
    cli.ok("camera", "add", "gate", "--location", "north gate")
    cli.ok("deployment", "watchlist-create", "wl", "--criteria", "warrants", "--category", "wanted_by_court",
           "--cap", "10")
    cli.ok("deployment", "watchlist-add", "1", "1", "--label", "person", "--reason", "warrant",
           "--review-date", _iso(timedelta(days=7))[:10])
    request = ["deployment", "request", "--purpose", "find wanted", "--watchlist", "1",
               "--camera", "1", "--start", _iso(timedelta()), "--end", _iso(timedelta(hours=2)),
               *GROUNDS, "--false-alert-rate", "0.01"]
    cli.refused(*request, match="calibration cohort")

    # a cohort of 60 people who are on no watchlist (real faces, linked, not copied)
    cohort = tmp_path / "cohort"
    singles = [d for d in sorted((data_dir / "lfw").iterdir()) if len(list(d.glob("*.jpg"))) == 1][:60]
    for d in singles:
        (cohort / d.name).mkdir(parents=True)
        for f in d.glob("*.jpg"):
            (cohort / d.name / f.name).symlink_to(f)
    monkeypatch.setenv("OPENLFR_CALIBRATION_COHORT", str(cohort))
    from openlfr.config import get_settings

    get_settings.cache_clear()
    out = cli.ok(*request)
    threshold = float(re.search(r"calibrated threshold (\d\.\d+)", out).group(1))
    assert 0.0 < threshold < 1.0  # on the configured model's own scale
    listing = cli.ok("deployment", "list", "--json")
    assert str(round(threshold, 4))[:5] in listing


def test_credentials_are_kept_per_store_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLFR_DATABASE_URL", "postgresql+psycopg://u:secret@db.example/openlfr")
    assert cli_credentials.store_key() == "postgresql+psycopg://u:***@db.example/openlfr"


def test_audit_verify_refuses_a_missing_or_empty_store_and_creates_nothing(
        cli: Cli, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mistyped data folder, a store truncated to 0 bytes, a store with an empty audit log:
    each is one error line and exit 2, never "chain OK: 0 events", and nothing is created."""
    cli.refused("audit", "verify", match="audit log is empty")  # migrated, but nothing ever recorded
    cli.ok("admin", "create", "estate-admin", "--org", ESTATE)
    assert "chain OK" in cli.ok("audit", "verify")

    monkeypatch.delenv("OPENLFR_DATABASE_URL")
    mistyped = tmp_path / "openlfr-dtaa"
    monkeypatch.setenv("OPENLFR_DATA_DIR", str(mistyped))
    get_settings.cache_clear()
    try:
        cli.refused("audit", "verify", match="no openlfr store at")
        assert not mistyped.exists()  # no folder, no database, no key
        mistyped.mkdir()
        (mistyped / "openlfr.db").write_bytes(b"")  # truncated to 0
        cli.refused("audit", "verify", match="is empty (0 bytes)")
        (mistyped / "openlfr.db").write_bytes(b"not a database at all" * 100)
        cli.refused("audit", "verify", match="cannot read the store")
        assert sorted(p.name for p in mistyped.iterdir()) == ["openlfr.db"]
    finally:
        get_settings.cache_clear()


def test_camera_addresses_at_the_cli_door(parties: Cli) -> None:
    parties.login("alice")
    parties.refused("camera", "add", "gate", "--location", "north gate", "--stream", "tcp://10.20.0.5:9000",
                    match="scheme 'tcp' is not allowed")
    parties.refused("camera", "add", "gate", "--location", "north gate", "--stream", "rtsp://10.20.0.5/s",
                    match="no camera network is allowed")
    assert "10.20.0.0/16" in parties.ok("camera", "networks", "10.20.0.0/16")
    assert "camera" in parties.ok("camera", "add", "gate", "--location", "north gate", "--stream", "rtsp://10.20.0.5/s")
    parties.refused("camera", "add", "admin-page", "--location", "x", "--stream", "http://127.0.0.1:8000/admin",
                    match="outside the networks")
    parties.login("met")
    parties.refused("camera", "networks", "0.0.0.0/0", match="")


def test_weak_password_at_the_cli_door(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLFR_NEW_PASSWORD", "password1234")
    cli.refused("admin", "create", "estate-admin", "--org", ESTATE, match="password too weak")
