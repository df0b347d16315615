"""The workspace (``fdnet serve``): where prosecutors, supervisors, outreach workers and auditors act on the lists.

Accounts and sessions live in :mod:`fdnet.workspace.accounts`, review states in
:mod:`fdnet.workspace.decisions`, the ``fdnet users`` commands in :mod:`fdnet.workspace.commands`.
"""
