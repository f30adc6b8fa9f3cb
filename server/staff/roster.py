"""The household roster import page (issue 14, step 3): template, upload → preview → apply, report.

The work is ``server.imports.households``; this is its shell. The uploaded file waits between the
preview and the apply in ``<blob dir>.imports/`` (``<db>.blobs.imports`` by default), named by its
uploader and its SHA-256, deleted when applied, after a day, or when the user has three newer ones;
so the apply imports exactly the file previewed, checked again against the database as it is then. Town staff and admins use it, each within their
areas (the engine's scope: a grid outside them is a problem of the file, never a write).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath

from ..imports import households as roster
from .core import FormData, Page, Refused, run, run_form
from .reports import XLSX, download

PATH = "/staff/admin/households-import"
MAX_FILE = 20 * 1024 * 1024          # 10,000 households are about 1.5 MB
KEEP_SECONDS = 24 * 3600
KEEP_PER_USER = 3                    # uploads waiting for an apply, per user
_TOKEN = re.compile(r"[0-9a-f]{64}")


def _dir(page: Page) -> Path:
    # beside the blob directory (the files a server keeps, which a PostgreSQL URL has no directory for)
    return Path(page.request.app.state["settings"].blobs + ".imports")


def _file(page: Page, token: str) -> Path:
    """The user's uploaded file of this token; another user's token is no file of theirs."""
    if not _TOKEN.fullmatch(token):
        raise Refused(404)
    path = _dir(page) / f"{page.user.id}-{token}.xlsx"
    if not path.is_file():
        raise Refused(404, "该文件已过期或已导入，请重新上传。")
    return path


def _forget_old(folder: Path, user_id: str) -> None:
    """Uploads older than a day, and the user's beyond their latest few: what waits for an apply
    stays bounded on disk, whatever one user uploads."""
    cutoff = time.time() - KEEP_SECONDS
    mine: list[tuple[float, Path]] = []
    for f in folder.glob("*.xlsx"):
        try:
            mtime = f.stat().st_mtime
            if mtime < cutoff:
                f.unlink()
            elif f.name.startswith(user_id + "-"):
                mine.append((mtime, f))
        except FileNotFoundError:
            pass
    for _, f in sorted(mine, reverse=True)[KEEP_PER_USER - 1:]:
        f.unlink(missing_ok=True)


@get(PATH, include_in_schema=False)
async def import_page(request: Request) -> Response[Any]:
    return await run(request, _import_page)


def _import_page(page: Page) -> Response[Any]:
    return page.render("staff/admin_households_import.html", result=None, token="", file_name="", error="")


@get(PATH + "/template", include_in_schema=False)
async def template(request: Request) -> Response[Any]:
    return await run(request, _template)


def _template(page: Page) -> Response[Any]:
    return download(roster.template_bytes(page.store, page.actor()), "住户花名册模板.xlsx", XLSX)


@post(PATH, include_in_schema=False, status_code=200, request_max_body_size=MAX_FILE + 64 * 1024)
async def upload(request: Request) -> Response[Any]:
    # the form read here, whatever its encoding: a body that is not multipart is refused by the same
    # session and CSRF checks as any form (then "choose a file"), not by the framework before them
    form = await request.form()
    return await run_form(request, {k: form.get(k) for k in form.keys()}, _upload)


def _preview(page: Page, token: str, name: str, error: str = "", http_status: int = 200) -> Response[Any]:
    try:
        result = roster.check(page.store, page.actor(), _file(page, token))
    except roster.UnreadableFile as e:
        return page.render("staff/admin_households_import.html", result=None, token="", file_name=name,
                           error=roster.say(e.message, page.lang), http_status=400)
    page.audit("import.households.check", None, None, {"file": name[:200], **result.counts()})
    return page.render("staff/admin_households_import.html", result=result, token=token, file_name=name,
                       problems=roster.first_problems(result), error=error, http_status=http_status,
                       say=roster.say)


def _upload(page: Page, form: dict[str, Any]) -> Response[Any]:
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        return page.render("staff/admin_households_import.html", result=None, token="", file_name="",
                           error=page.t("请选择要导入的 Excel 文件（.xlsx）。"), http_status=400)
    raw = upload.file.read(MAX_FILE + 1)
    name = os.path.basename(upload.filename or "")[:200]
    if len(raw) > MAX_FILE or not raw:
        return page.render("staff/admin_households_import.html", result=None, token="", file_name=name,
                           error=page.t("文件为空或超过20MB，请分批导入。"), http_status=400)
    token = hashlib.sha256(raw).hexdigest()
    folder = _dir(page)
    folder.mkdir(parents=True, exist_ok=True)
    _forget_old(folder, page.user.id)
    target = folder / f"{page.user.id}-{token}.xlsx"
    partial = target.with_suffix(".part")
    partial.write_bytes(raw)
    os.replace(partial, target)
    return _preview(page, token, name)


@post(PATH + "/apply", include_in_schema=False, status_code=200)
async def apply(request: Request, data: FormData) -> Response[Any]:
    return await run_form(request, data, _apply)


def _apply(page: Page, form: dict[str, Any]) -> Response[Any]:
    token, name = str(form.get("token") or ""), str(form.get("name") or "")[:200]
    path = _file(page, token)
    try:
        result = roster.apply(page.writer, page.actor(), path, label=name)
    except roster.ImportRefused as e:
        return _preview(page, token, name, error=roster.say(e.message, page.lang), http_status=409)
    except roster.UnreadableFile as e:
        return page.render("staff/admin_households_import.html", result=None, token="", file_name=name,
                           error=roster.say(e.message, page.lang), http_status=400)
    path.unlink(missing_ok=True)
    return page.render("staff/admin_households_import.html", result=result, token="", file_name=name, problems=[],
                       error="")


@get(PATH + "/report/{token:str}", include_in_schema=False)
async def report(request: Request, token: FromPath[str]) -> Response[Any]:
    return await run(request, _report, token)


def _report(page: Page, token: str) -> Response[Any]:
    result = roster.check(page.store, page.actor(), _file(page, token))
    return download(roster.report_bytes(result), "住户导入检查报告.xlsx", XLSX)


ROUTES: list[Any] = [import_page, template, upload, apply, report]
