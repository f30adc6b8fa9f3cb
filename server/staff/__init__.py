"""The staff console (issue 6): server-rendered pages under ``/staff/`` for town and county staff.

``core`` holds what every page shares (sessions, CSRF, scope, i18n, the staff push); each other
module is one area of the console and lists its handlers in ``ROUTES``.
"""

from __future__ import annotations

from typing import Any

from litestar.static_files import create_static_files_router

from ..pwa import StaticFiles
from . import admin, auth, conflicts, dashboard, households, matters, reports, roster
from .core import HERE

ROUTES: list[Any] = [
    auth.login_form, auth.login_submit, auth.first_password, auth.logout, auth.switch_language, dashboard.dashboard,
    *matters.ROUTES, *households.ROUTES, *conflicts.ROUTES, *reports.ROUTES, *admin.ROUTES, *roster.ROUTES,
    create_static_files_router(path="/staff/static", directories=[HERE / "static"], name="staff-static",
                               include_in_schema=False, file_system=StaticFiles()),
]
