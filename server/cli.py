"""The command line: ``python -m server …`` and ``gridbook …`` are the same.

    serve   --db PATH --host 127.0.0.1 --port 8000 [--workers N]
            (--db everywhere: a SQLite path, or a postgresql:// URL; GRIDBOOK_DB sets the default)
    run     --db PATH          migrate, seed the demo town if the database is new, print the demo accounts, serve
    demo    --db PATH          seed the demo town into a new database
    migrate --db PATH
    user add|set-areas|passwd|disable|enable|list
    device list|revoke
    area list|import
    import  grids FILE.xlsx  grids and their 网格长/网格员 (docs/onboarding.md §2)
    import users FILE.xlsx [--dry-run] [--passwords OUT.xlsx]   users with one-time initial passwords
    import households FILE.xlsx [--as USER] [--apply] [--report OUT.xlsx]   the household roster (dry run by default)
    import template households OUT.xlsx [--as USER]                          its template
    backup  --db PATH DEST     an online, consistent copy
    restore --db TARGET BACKUP put a backup in place as a new database (phones resync)
    gc      --db PATH          forget deletions and push results older than the retention (180 days),
                               delete blob uploads unfinished for upload_expiry_days (7)
"""

from __future__ import annotations

import argparse
import getpass
import os
import subprocess
import sys
import urllib.parse
from typing import Any, Callable

from sync import accounts
from sync.blobs import StorageError
from sync.engine import area_tree
from sync.errors import SyncError
from sync.storage import Store
from sync.store import is_postgres, open_store

from .settings import SETTINGS, SettingError, Settings

DEMO_ACCOUNTS = [
    ("worker1", "李秀英 网格员 (grid worker)", "杖锡村第一网格"),
    ("worker2", "王建军 网格员 (grid worker)", "杖锡村第一网格 (same grid as worker1)"),
    ("worker3", "李海波 网格员 (grid worker)", "a grid of 李家坑村 (another village)"),
    ("agent1", "黄志明 高山代办员 (proxy agent)", "杖锡村 (worker1's village)"),
    ("staff1", "周海燕 镇工作人员 (town staff)", "章水镇"),
    ("admin", "管理员 (admin)", "everything"),
]


_opened: list[Store] = []


def _open(db: str) -> Store:
    """A store that ``main`` closes when the command ends, on an error too: a PostgreSQL
    connection left to the garbage collector is a ResourceWarning, and a session the server holds
    until it notices (SQLite's file handle was closed quietly)."""
    s = open_store(db)
    _opened.append(s)
    return s


def _store(args: argparse.Namespace) -> Store:
    s = _open(args.db)
    s.migrate()
    return s


def shown(db: str) -> str:
    """The database as printed: a PostgreSQL URL without its password."""
    if not is_postgres(db):
        return db
    parts = urllib.parse.urlsplit(db)
    if parts.password is None:
        return db
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _exists(db: str) -> bool:
    """Whether there is a Gridbook database at ``db`` (a file; for PostgreSQL, its tables)."""
    if is_postgres(db):
        from sync.store_pg import database_exists
        return database_exists(db)
    return os.path.exists(db)


def _resolve_area(store: Store, ref: str) -> str:
    """An area by id, by name, or by a path of names separated by '/' (章水镇/杖锡村/第一网格)."""
    tree = area_tree(store)
    if ref in tree:
        return ref
    names = {r.id: r.data.get("name") for r in store.get_many("areas", list(tree.parent)).values()}
    parts = [p for p in ref.split("/") if p]
    matches = [a for a in tree.parent if names.get(a) == parts[-1]]
    if len(parts) > 1:
        matches = [a for a in matches
                   if [names.get(x) for x in reversed(tree.path(a))][-len(parts):] == parts]
    if len(matches) != 1:
        raise SyncError("invalid_request", f"area {ref!r}: {'no match' if not matches else 'ambiguous'}; "
                        "use its id or a path like 章水镇/杖锡村/第一网格 (see `area list`)")
    return matches[0]


def print_demo_accounts(out: Any = sys.stdout) -> None:
    print("Demo accounts (password for all: demo)", file=out)
    for user, role, where in DEMO_ACCOUNTS:
        print(f"  {user:<8} {role:<30} {where}", file=out)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app, prepare

    settings = _settings(args)
    proxy = settings.proxy_options()
    workers = args.workers
    if workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 1
    app: Any
    if workers == 1:
        app = create_app(settings)
    else:
        # uvicorn spawns fresh interpreters that import the app by name and call the factory, so
        # the settings travel in the environment; what must happen once (migrations, catalogue,
        # key file) happens here, before any worker starts.
        prepare(settings)
        os.environ.update(worker_environment(settings))
        app = "server.app:worker_app"
    print(f"Gridbook serving on http://{settings.host}:{settings.port}  (database {shown(settings.db)}"
          + (f", {workers} worker processes" if workers > 1 else "") + ")\n"
          f"  field app:     http://{settings.host}:{settings.port}/\n"
          f"  staff console: http://{settings.host}:{settings.port}/staff/", flush=True)
    # Keep idle connections 75 s (uvicorn's default is 5 s): a 2G phone takes several seconds to
    # receive a pull page, and a new TCP connection per page costs it a round trip each time.
    # Forwarded headers are believed from trusted_proxies only (never uvicorn's default 127.0.0.1):
    # the login limiter counts the address they give.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, access_log=False,
                timeout_graceful_shutdown=5, timeout_keep_alive=75, factory=workers > 1,
                workers=workers if workers > 1 else None, **proxy)
    return 0


def worker_environment(settings: Settings) -> dict[str, str]:
    """Every setting as its ``GRIDBOOK_<NAME>`` variable, so that ``Settings.load()`` in a worker
    process gives exactly the parent's settings (command-line options included)."""
    out = {}
    for name, _, _ in SETTINGS:
        value = getattr(settings, name)
        out["GRIDBOOK_" + name.upper()] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    return out


def cmd_run(args: argparse.Namespace) -> int:
    if not _exists(args.db):
        print(f"No database at {shown(args.db)}: seeding the demo town (章水镇) …", flush=True)
        cmd_demo(args)
    print_demo_accounts()
    return cmd_serve(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from .blobstore import blob_bytes
    from .demo import seed

    if _exists(args.db) and not getattr(args, "force", False):
        print(f"{shown(args.db)} exists; the demo town is seeded only into a new database (use --force to add anyway).",
              file=sys.stderr)
        return 1
    postgres = is_postgres(args.db)
    if not postgres:
        os.makedirs(os.path.dirname(os.path.abspath(args.db)), exist_ok=True)
    blobs = blob_bytes(_settings(args))   # the signatures go where the server will look for them
    if postgres:
        # Into the (empty) database itself: a failed seed says so, and the database is to be made
        # again (dropdb/createdb) before `run` would take a half-seeded one for a real one.
        store = _store(args)
        try:
            summary = seed(store, seed_value=getattr(args, "seed", 20261123), blob_dir=blobs)
        except BaseException:
            print(f"error: seeding {shown(args.db)} failed; drop and create that database again before the next try",
                  file=sys.stderr)
            raise
        finally:
            store.close()
    elif os.path.exists(args.db):  # --force: add to the existing database
        store = _store(args)
        summary = seed(store, seed_value=getattr(args, "seed", 20261123), blob_dir=blobs)
        store.close()
    else:
        # Seed beside it and move into place at the end: a failed seed never leaves a half-seeded
        # database that `run` would then take for a real one.
        partial = args.db + ".seeding"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(partial + suffix):
                os.remove(partial + suffix)
        store = open_store(partial)
        store.migrate()
        summary = seed(store, seed_value=getattr(args, "seed", 20261123), blob_dir=blobs)
        store.checkpoint()
        store.close()
        os.replace(partial, args.db)
    print("Seeded: " + ", ".join(f"{k} {v}" for k, v in summary.items()), flush=True)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from sync.catalogue import install_catalogue

    s = _open(args.db)
    applied = s.migrate()
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    n = install_catalogue(s)
    if n:
        print(f"installed the shipped matter catalogue ({n} categories)")
    return 0


def cmd_user(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.user_cmd == "list":
        ids = [uid for uid, _ in store.live_users()]
        for u in store.get_many("users", ids).values():
            d = u.data
            print(f"{d['username']:<12} {d['role']:<12} {'active' if d.get('active', True) else 'disabled':<9} "
                  f"{d.get('display_name') or '':<12} areas={','.join(d.get('areas') or []) or '-'}  id={u.id}")
        return 0
    if args.user_cmd == "add":
        generated = args.one_time and not args.password
        password = (accounts.one_time_password(args.username) if generated
                    else args.password or _ask_password(f"Password for {args.username}: "))
        areas = [_resolve_area(store, a) for a in (args.areas or [])]
        uid = accounts.create_user(store, args.username, password, args.role, areas, display_name=args.display_name,
                                   phone=args.phone, must_change=args.one_time)
        print(f"created {args.username} ({args.role}) id={uid}")
        _print_one_time(args.username, password if generated else None, args.one_time)
        return 0
    user = store.user_by_username(args.username)
    if user is None:
        print(f"no user {args.username!r}", file=sys.stderr)
        return 1
    if args.user_cmd == "set-areas":
        areas = [_resolve_area(store, a) for a in args.areas]
        accounts.update_user(store, user.id, areas=areas)
        print(f"{args.username}: areas = {', '.join(areas)} (their devices will resync: cursors expire)")
    elif args.user_cmd == "passwd":
        devices = accounts.active_devices(store, user.id)
        if devices and not (args.revoke_devices or args.keep_devices):
            print(f"{args.username} is signed in on {len(devices)} device(s):", file=sys.stderr)
            _print_devices(store, devices, sys.stderr)
            print("Choose --revoke-devices if the password may have leaked (each phone then wipes its local "
                  "data at its next contact, unsent records included), or --keep-devices.", file=sys.stderr)
            return 1
        generated = args.one_time and not args.password
        password = (accounts.one_time_password(args.username) if generated
                    else args.password or _ask_password(f"New password for {args.username}: "))
        revoked = accounts.set_password(store, user.id, password, revoke_devices=bool(args.revoke_devices),
                                        must_change=args.one_time)
        print(f"{args.username}: password changed; console sessions ended"
              + (f"; revoked {_n(len(revoked), 'device')}" if args.revoke_devices else ""))
        _print_one_time(args.username, password if generated else None, args.one_time)
    elif args.user_cmd == "disable":
        devices = accounts.active_devices(store, user.id)
        if not args.yes:
            print(f"Disabling {args.username} stops them signing in and revokes every device of theirs: each phone "
                  "wipes its local data at its next contact, unsent records included.", file=sys.stderr)
            _print_devices(store, devices, sys.stderr)
            print("Add --yes to disable.", file=sys.stderr)
            return 1
        revoked = accounts.disable_user(store, user.id)
        print(f"{args.username}: disabled; revoked {_n(len(revoked), 'device')}")
    elif args.user_cmd == "enable":
        accounts.update_user(store, user.id, active=True)
        print(f"{args.username}: enabled (their devices were revoked when disabled: they sign in again)")
    return 0


def _print_one_time(username: str, generated: str | None, one_time: bool) -> None:
    if generated:
        print(f"{username}: one-time password {generated} (shown once; it is changed at first sign-in)")
    elif one_time:
        print(f"{username}: the password is one-time (it is changed at first sign-in)")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _ask_password(prompt: str) -> str:
    password = getpass.getpass(prompt)
    if getpass.getpass("Again: ") != password:
        raise SyncError("invalid_request", "password: the two entries differ")
    return password


def _print_devices(store: Store, devices: list[dict[str, Any]], out: Any) -> None:
    """One line per device, saying what revoking it would lose (the outbox depth it last reported)."""
    if not devices:
        print("  (no signed-in device)", file=out)
    for d in devices:
        depth = d.get("outbox_depth")
        unsent = ("unsent records unknown" if depth is None else "nothing unsent" if depth == 0
                  else f"{depth} unsent records: they would be lost")
        print(f"  {d['id']}  {d['name'][:24]:<24} last seen {d['last_seen_at'] or 'never'}  {unsent}", file=out)


def cmd_device(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.device_cmd == "list":
        uid = None
        if args.user:
            u = store.user_by_username(args.user)
            if u is None:
                print(f"no user {args.user!r}", file=sys.stderr)
                return 1
            uid = u.id
        names = {uid: username for uid, (_, username) in store.all_user_names().items()}
        for d in store.devices(uid):
            state = f"REVOKED {d['revoked_at']}" if d["revoked_at"] else "active"
            print(f"{d['id']}  {names.get(d['user_id'], '?'):<10} {d['name'][:24]:<24} last seen "
                  f"{d['last_seen_at'] or 'never'}  {state}")
        return 0
    if args.device_cmd == "revoke":
        if not args.yes:
            print("Revoking wipes the phone's local data at its next contact, unsent records included. "
                  "It is for a lost or stolen phone. Add --yes to revoke.", file=sys.stderr)
            return 1
        ok = accounts.revoke_device(store, args.device_id)
        print("revoked" if ok else "no such active device")
        return 0 if ok else 1
    return 2


def cmd_area(args: argparse.Namespace) -> int:
    if args.area_cmd == "import":
        return cmd_area_import(args)
    store = _store(args)
    tree = area_tree(store)
    recs = store.get_many("areas", list(tree.parent))

    def show(aid: str, depth: int) -> None:
        d = recs[aid].data
        print(f"{'  ' * depth}{d['name']} ({d['level']}{', 高山' if d.get('mountain') else ''})  {aid}")
        for c in sorted(tree.children.get(aid, []), key=lambda x: (recs[x].data.get('sort') or 0, recs[x].data['name'])):
            show(c, depth + 1)

    for r in tree.roots():
        show(r, 0)
    return 0


def _import_users(args: argparse.Namespace) -> int:
    """Users from an .xlsx (docs/onboarding.md §3): a report of problems by row, or every row written."""
    from .imports import users

    try:
        with open(args.file, "rb") as f:
            data = f.read(users.MAX_BYTES + 1)
    except OSError as e:
        print(f"error: {args.file}: {e.strerror}", file=sys.stderr)
        return 1
    store = _store(args)
    out = None
    if not args.dry_run and args.passwords:
        # Opened before anything is written: the passwords exist only in this file once applied.
        try:   # a new file, readable by its owner only
            out = os.fdopen(os.open(args.passwords, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        except OSError as e:
            print(f"error: {args.passwords}: {e.strerror} (the passwords file must be new)", file=sys.stderr)
            return 1
    try:
        if args.dry_run:
            plan, passwords = users.plan(store, data), []
        else:
            applied = users.apply(store, data)
            plan, passwords = applied.plan, applied.passwords
        if not plan.ok:
            print(f"{args.file}: {_n(len(plan.problems), 'problem')}; nothing was written", file=sys.stderr)
            print("行\t列\t值\t原因", file=sys.stderr)
            for p in plan.problems:
                print(f"{p.row or ''}\t{p.column}\t{p.value}\t{p.reason}", file=sys.stderr)
            return 1
        print(f"{args.file}: {len(plan.creates)} new, {len(plan.updates)} updated, {len(plan.unchanged)} unchanged"
              + (" (dry run: nothing written)" if args.dry_run else ""))
        for r in plan.updates:
            print(f"  update {r.username}: {', '.join(sorted(r.changes))}")
        if passwords:
            if out is not None:
                out.write(users.passwords_xlsx(passwords))
                print(f"one-time passwords of the {_n(len(passwords), 'new user')}: {args.passwords} "
                      "(the only copy; each is changed at first sign-in)")
            else:
                print("one-time passwords (shown once; each is changed at first sign-in):")
                for username, name, password in passwords:
                    print(f"  {username:<16} {name:<10} {password}")
        return 0
    finally:
        if out is not None:
            written = out.tell()
            out.close()
            if not written:     # no new user, or nothing applied: no empty passwords file left behind
                os.unlink(args.passwords)


def _read_input(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        print(f"error: cannot read {path}: {e.strerror or e}", file=sys.stderr)
        return None


def _report(problems: list[Any], path: str | None) -> None:
    """An import's problems, one line each on stderr, and as an .xlsx when asked (--report)."""
    from .imports.report import problems_xlsx

    for p in problems:
        print(p.line(), file=sys.stderr)
    if path:
        with open(path, "wb") as f:
            f.write(problems_xlsx(problems))
        print(f"the problems are also in {path}", file=sys.stderr)


def _checked_import(args: argparse.Namespace, run: Callable[..., Any]) -> Any:
    """Run an area or grid import on ``args.file``: its result, or None once the problems (by row, and
    in ``--report``) or the engine's refusal (the whole import undone) have been said."""
    from .imports.areas import ImportRefused

    data = _read_input(args.file)
    if data is None:
        return None
    try:
        out = run(_store(args), data, dry_run=args.dry_run)
    except ImportRefused as e:   # the engine refused a write: the whole import was undone
        print(f"error: nothing was written: {e}", file=sys.stderr)
        return None
    if out.problems:
        print(f"{_n(len(out.problems), 'problem')} in {args.file}; nothing was written:", file=sys.stderr)
        _report(out.problems, args.report)
        return None
    return out


def cmd_area_import(args: argparse.Namespace) -> int:
    """``area import FILE``: the county's areas from the national code list (docs/onboarding.md §1)."""
    from .imports.areas import import_areas

    out = _checked_import(args, import_areas)
    if out is None:
        return 1
    levels = ", ".join(f"{k} {v}" for k, v in sorted(out.levels.items()))
    verb = "would create" if args.dry_run else "created"
    print(f"{args.file}: {sum(out.levels.values())} areas ({levels}); {verb} {len(out.created)}, "
          f"{'would update' if args.dry_run else 'updated'} {len(out.updated)}, unchanged {out.unchanged}")
    for line in out.updated:
        print(f"  updated: {line}")
    if args.dry_run:
        print("dry run: nothing was written")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    return IMPORTS[args.import_cmd](args)


def _import_grids(args: argparse.Namespace) -> int:
    """``import grids FILE.xlsx``: grids (and 片) with their people (docs/onboarding.md §2)."""
    from .imports.grids import import_grids

    out = _checked_import(args, import_grids)
    if out is None:
        return 1
    would = "would be " if args.dry_run else ""
    print(f"{args.file}: grids {would}created {len(out.grids_created)}, already there {out.unchanged}; "
          f"片 {would}created {len(out.patches_created)}; users whose areas {would}changed "
          f"{len(out.users_updated)}" + (f" ({', '.join(out.users_updated)}; their devices resync)"
                                         if out.users_updated else ""))
    if args.dry_run:
        print("dry run: nothing was written")
    return 0


def _importer(store: Store, username: str | None) -> Any:
    """Who an import acts as: a user (their role and areas, their console device), or the system
    (an admin of everything) when no --as is given."""
    from sync.scope import Actor

    if not username:
        return Actor("system", "admin", (), "system", "system")
    from .staff.core import console_actor

    user = store.user_by_username(username)
    if user is None or user.deleted or user.data.get("active") is False:
        raise SyncError("invalid_request", f"--as: no active user {username!r}")
    return console_actor(user.id, str(user.data.get("role")), list(user.data.get("areas") or []))


def _import_households(args: argparse.Namespace) -> int:
    """``import households FILE.xlsx`` and ``import template households OUT``: the roster (docs/onboarding.md §4)."""
    from .imports import households

    store = _store(args)
    actor = _importer(store, args.as_user)
    if args.import_cmd == "template":
        households.write_template(args.out, households.template_grids(store, actor))
        print(f"template written to {args.out}")
        return 0
    try:
        if args.apply:
            result = households.apply(store, actor, args.file, label=os.path.basename(args.file))
        else:
            result = households.check(store, actor, args.file)
    except households.UnreadableFile as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    except households.ImportRefused as e:
        if e.result is not None:
            for line in households.summary_lines(e.result):
                print(line)
            if args.report:
                households.write_report(args.report, e.result)
                print(f"report written to {args.report}")
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    for line in households.summary_lines(result):
        print(line)
    if args.report:
        households.write_report(args.report, result)
        print(f"report written to {args.report}")
    if not args.apply:
        print("dry run: nothing written" + ("; add --apply to import" if result.ok else ""))
        return 0 if result.ok else 1
    print(f"imported: {len(result.mutations)} changes pushed as {args.as_user or 'system'}")
    return 0




IMPORTS = {"grids": _import_grids, "users": _import_users, "households": _import_households,
           "template": _import_households}


def cmd_backup(args: argparse.Namespace) -> int:
    if not (is_postgres(args.db) or os.path.isfile(args.db)):
        # Opening it would create an empty database there, and the "backup" would be of nothing.
        print(f"error: there is no database at {shown(args.db)} (check --db)", file=sys.stderr)
        return 1
    store = _open(args.db)
    store.backup_to(args.dest)
    print(f"backup written to {args.dest} (new cursor epoch: phones resync if it is ever restored)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """A backup becomes the database at ``--db``, which must not exist yet (PostgreSQL: an empty
    database). Its cursor epoch is the backup's own, new one: phones resync (docs/operations.md)."""
    import shutil

    if not os.path.isfile(args.backup):
        print(f"error: there is no backup at {args.backup}", file=sys.stderr)
        return 1
    if is_postgres(args.db):
        from sync.store_pg import restore_into
        restore_into(args.db, args.backup)
    else:
        if os.path.exists(args.db):
            raise FileExistsError(args.db)
        os.makedirs(os.path.dirname(os.path.abspath(args.db)), exist_ok=True)
        partial = args.db + ".restoring"
        shutil.copyfile(args.backup, partial)
        os.replace(partial, args.db)
    store = _store(args)   # migrations a newer server added since the backup
    store.close()
    print(f"restored {args.backup} into {shown(args.db)}; phones will resync when they next pull")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from sync.store import iso, utcnow

    from .blobstore import blob_store

    store = _store(args)
    settings = _settings(args)
    blobs = blob_store(settings)   # first: blob settings that cannot work stop gc before it changes anything
    days = max(args.days or settings.tombstone_retention_days, 180)  # the protocol keeps deletions and push results at least 180 days
    out = store.purge(iso(utcnow() - timedelta(days=days)))
    print(f"forgot {out['tombstones']} deletions, {out['exits']} scope exits and {out['results']} push results "
          f"older than {days} days; devices with older cursors will resync")
    # Abandoned uploads: nobody else can finish them (they are their uploader's), and they count
    # against the uploader's quota of unfinished bytes (max_pending_upload_bytes).
    upload_days = settings.upload_expiry_days
    uploads, freed, strays = blobs.expire_uploads(store, utcnow() - timedelta(days=upload_days))
    print(f"deleted {uploads} unfinished upload{'' if uploads == 1 else 's'} ({freed} bytes) untouched for more "
          f"than {upload_days} day{'' if upload_days == 1 else 's'}"
          + (f", and {strays} stray partial upload{'' if strays == 1 else 's'}" if strays else "")
          + "; phones start those again from the beginning")
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {name: getattr(args, name, None) for name, _, _ in SETTINGS}
    return Settings.load(overrides)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gridbook", description="Gridbook (网格民情簿) server and administration")
    sub = p.add_subparsers(dest="cmd", required=True)

    def with_db(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--db", default=os.environ.get("GRIDBOOK_DB", "data/gridbook.db"),
                        help="the database: a SQLite file path or a postgresql:// URL (default: GRIDBOOK_DB, "
                             "else data/gridbook.db)")
        return sp

    for name in ("serve", "run"):
        sp = with_db(sub.add_parser(name, help="serve the API, the app and the staff pages"
                                    if name == "serve" else "seed the demo town if new, then serve"))
        sp.add_argument("--host", default=None)
        sp.add_argument("--port", type=int, default=None)
        sp.add_argument("--blob-dir", dest="blob_dir", default=None)
        sp.add_argument("--pwa-dir", dest="pwa_dir", default=None)
        sp.add_argument("--log-level", default="warning")
        sp.add_argument("--workers", type=int, default=1,
                        help="worker processes serving one port on one database (default 1)")
        if name == "run":
            sp.add_argument("--seed", type=int, default=20261123)
    sp = with_db(sub.add_parser("demo", help="seed the demo town (章水镇) into a new database"))
    sp.add_argument("--seed", type=int, default=20261123, help="random seed; the same seed gives the same town")
    sp.add_argument("--force", action="store_true")
    with_db(sub.add_parser("migrate", help="apply database migrations"))

    up = sub.add_parser("user", help="user administration")
    usub = up.add_subparsers(dest="user_cmd", required=True)
    sp = with_db(usub.add_parser("add"))
    sp.add_argument("username")
    sp.add_argument("--role", required=True, choices=["grid_worker", "proxy_agent", "staff", "admin"])
    sp.add_argument("--areas", nargs="*", help="area ids, names or paths")
    sp.add_argument("--password")
    sp.add_argument("--display-name", dest="display_name")
    sp.add_argument("--phone")
    sp.add_argument("--one-time", dest="one_time", action="store_true",
                    help="a one-time password, changed at first sign-in (without --password: generated, printed once)")
    sp = with_db(usub.add_parser("set-areas"))
    sp.add_argument("username")
    sp.add_argument("areas", nargs="+")
    sp = with_db(usub.add_parser("passwd"))
    sp.add_argument("username")
    sp.add_argument("--password")
    sp.add_argument("--one-time", dest="one_time", action="store_true",
                    help="a one-time password, changed at first sign-in (without --password: generated, printed once)")
    choice = sp.add_mutually_exclusive_group()
    choice.add_argument("--revoke-devices", dest="revoke_devices", action="store_true",
                        help="also revoke every device of the user (a leaked password): phones wipe their data")
    choice.add_argument("--keep-devices", dest="keep_devices", action="store_true",
                        help="leave the user's devices signed in (a forgotten password)")
    sp = with_db(usub.add_parser("disable"))
    sp.add_argument("username")
    sp.add_argument("--yes", action="store_true",
                    help="confirm: every device of the user is revoked and wipes its data, unsent records included")
    with_db(usub.add_parser("enable")).add_argument("username")
    with_db(usub.add_parser("list"))

    dp = sub.add_parser("device", help="device administration")
    dsub = dp.add_subparsers(dest="device_cmd", required=True)
    with_db(dsub.add_parser("list")).add_argument("--user")
    sp = with_db(dsub.add_parser("revoke", help="revoke a lost or stolen phone (wipes its local data)"))
    sp.add_argument("device_id")
    sp.add_argument("--yes", action="store_true", help="confirm: the phone's unsent data will be wiped")

    ap = sub.add_parser("area", help="the area tree")
    asub = ap.add_subparsers(dest="area_cmd", required=True)
    with_db(asub.add_parser("list"))
    sp = with_db(asub.add_parser("import", help="areas from the national code list (统计用区划代码), a CSV"))
    sp.add_argument("file")
    sp.add_argument("--dry-run", dest="dry_run", action="store_true", help="check and report, write nothing")
    sp.add_argument("--report", help="also write the problems found to this .xlsx")

    ip = sub.add_parser("import", help="onboarding imports (docs/onboarding.md)")
    isub = ip.add_subparsers(dest="import_cmd", required=True)
    sp = with_db(isub.add_parser("grids", help="grids (and 片) with their 网格长 and 网格员, from an .xlsx"))
    sp.add_argument("file")
    sp.add_argument("--dry-run", dest="dry_run", action="store_true", help="check and report, write nothing")
    sp.add_argument("--report", help="also write the problems found to this .xlsx")
    sp = with_db(isub.add_parser("users", help="users from an .xlsx, each new one with a one-time password"))
    sp.add_argument("file", help="the .xlsx: 用户名, 姓名, 手机号码, 角色, 工作区域")
    sp.add_argument("--dry-run", dest="dry_run", action="store_true", help="check and report; write nothing")
    sp.add_argument("--passwords", help="write the new users' one-time passwords to this new .xlsx "
                    "(else they are printed)")
    sp = with_db(isub.add_parser("households", help="the household roster from an .xlsx (a dry run unless --apply)"))
    sp.add_argument("file")
    sp.add_argument("--as", dest="as_user", default=None,
                    help="import as this user (their areas bound what may be imported); default: the system")
    sp.add_argument("--apply", action="store_true", help="write (all rows or none); without it nothing is written")
    sp.add_argument("--report", default=None, help="write the problems and counts to this .xlsx")
    tp = isub.add_parser("template", help="write an import template")
    tsub = tp.add_subparsers(dest="template_kind", required=True)
    sp = with_db(tsub.add_parser("households", help="the household roster's template"))
    sp.add_argument("out")
    sp.add_argument("--as", dest="as_user", default=None, help="list this user's grids in the template")

    sp = with_db(sub.add_parser("gc", help="forget deletions, scope exits and push results past the retention; "
                                "delete abandoned blob uploads"))
    sp.add_argument("--blob-dir", dest="blob_dir", default=None,
                    help="the blob directory (default: the blob_dir setting, or <db>.blobs)")
    sp.add_argument("--days", type=int, default=None,
                    help="retention in days (at least 180; default: the tombstone_retention_days setting)")
    sp = with_db(sub.add_parser("backup", help="online, consistent backup (SQLite's backup API; pg_dump of one "
                                "snapshot for PostgreSQL)"))
    sp.add_argument("dest")
    sp = with_db(sub.add_parser("restore", help="make a new database from a backup (phones resync)"))
    sp.add_argument("backup")
    return p


COMMANDS = {"serve": cmd_serve, "run": cmd_run, "demo": cmd_demo, "migrate": cmd_migrate, "user": cmd_user,
            "device": cmd_device, "area": cmd_area, "backup": cmd_backup, "restore": cmd_restore,
            "gc": cmd_gc, "import": cmd_import}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    finally:
        while _opened:
            _opened.pop().close()


def _run(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.cmd](args)
    except SyncError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    except FileExistsError as e:
        print(f"error: {e} exists", file=sys.stderr)
        return 1
    except SettingError as e:   # the console key file, trusted_proxies …
        print(f"error: {e}", file=sys.stderr)
        return 1
    except StorageError as e:   # the blob storage (an S3 bucket) failed
        print(f"error: {e}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as e:   # pg_dump or psql (PostgreSQL backup, restore)
        print(f"error: {e.cmd[0]} failed with exit status {e.returncode} (its message is above)", file=sys.stderr)
        return 1
    except Exception as e:
        if type(e).__module__.startswith("psycopg"):   # PostgreSQL unreachable, refused, …
            print(f"error: the database {shown(args.db)}: {str(e).strip() or type(e).__name__}", file=sys.stderr)
            return 1
        raise
