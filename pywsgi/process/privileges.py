"""--user / --group: resolved in the master before anything is bound, taken by each child (server
or daemon process) right after the fork, before the application is loaded (docs/operations.md).
The master stays root."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from pywsgi.config.typed import Settings
from pywsgi.errors import StartupError

__all__ = ["Privileges", "drop_privileges", "enter_child"]


@dataclass
class Privileges:
    """The user and group the children run as; uid/gid None: keep the current one."""
    uid: Optional[int] = None
    gid: Optional[int] = None
    user_name: Optional[str] = None     # for initgroups(3)

    @property
    def active(self) -> bool:
        return self.uid is not None or self.gid is not None

    @classmethod
    def resolve(cls, user: Optional[str], group: Optional[str]) -> Privileges:
        """NAME or numeric id -> ids. Not root: only our own user and group are accepted
        (nothing to switch to), anything else is an error now rather than in every child."""
        import grp
        import pwd
        result = cls()
        if user:
            try:
                entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
                result.uid, result.user_name = entry.pw_uid, entry.pw_name
                result.gid = entry.pw_gid
            except KeyError:
                if not user.isdigit():
                    raise StartupError(f"--user {user}: no such user") from None
                if not group:
                    raise StartupError(f"--user {user}: no passwd entry for this uid, so no "
                                          f"group to run as: give --group too") from None
                result.uid = int(user)      # a bare uid without a passwd entry (containers)
        if group:
            try:
                result.gid = (grp.getgrgid(int(group)) if group.isdigit()
                              else grp.getgrnam(group)).gr_gid
            except KeyError:
                if not group.isdigit():
                    raise StartupError(f"--group {group}: no such group") from None
                result.gid = int(group)
        if os.geteuid() != 0:
            if result.uid is not None and result.uid != os.geteuid():
                raise StartupError(f"--user {user}: only root can run as another user "
                                      f"(pywsgi runs as uid {os.geteuid()})")
            if result.gid is not None and result.gid != os.getegid() and \
                    (group or result.uid is None):
                raise StartupError(f"--group {group}: only root can run as another group "
                                      f"(pywsgi runs as gid {os.getegid()})")
            return cls()                    # already who we should be: nothing to do
        return result

    def chown(self, path: str) -> None:
        """Give `path` (made by the root master) to the children's user and group."""
        if self.active:
            os.chown(path, -1 if self.uid is None else self.uid,
                     -1 if self.gid is None else self.gid)


def drop_privileges(user: Optional[str], group: Optional[str]) -> None:
    """In a child, before the application is loaded: setgroups/initgroups, then setgid, then
    setuid (the other order would leave no right to change the group). A no-op unless root.
    Shared with daemon process groups (user=/group= in --daemon-process)."""
    if os.geteuid() != 0 or not (user or group):
        return
    target = Privileges.resolve(user, group)
    if target.gid is not None:
        if target.user_name is not None:
            os.initgroups(target.user_name, target.gid)   # the user's supplementary groups
        else:
            os.setgroups([target.gid])                    # none of root's
        os.setgid(target.gid)
    if target.uid is not None:
        if target.gid is None:
            os.setgroups([])
        os.setuid(target.uid)
        if target.uid != 0:
            try:
                os.setuid(0)
            except PermissionError:
                pass
            else:  # never serve requests with a way back to root
                raise OSError("could not give up root: setuid(0) succeeded after dropping")


def enter_child(settings: Settings, group=None) -> Optional[int]:
    """In a forked child, before the application is loaded: open what needs root (the access
    log of a server process: its descriptor is returned), then become --user/--group (a daemon
    group's own user=/group= win)."""
    user, group_name = settings.user, settings.group
    if group is not None and getattr(group, "user", None):
        user, group_name = group.user, group.group
    elif group is not None and getattr(group, "group", None):
        group_name = group.group
    if os.geteuid() != 0 or not (user or group_name):
        return None
    access_log_fd = None
    access_log = settings.access_log
    if access_log not in (None, "-") and group is None:
        # opened as root, like Apache's logs; the core takes the fd instead of the path
        access_log_fd = os.open(
            access_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    drop_privileges(user, group_name)
    return access_log_fd
