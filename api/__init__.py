"""XiaoKe API: chat, sessions, dialog manager, persistence, admin and agent endpoints.

Importing this package opens no connection and starts no task: everything heavy is built in
`api.main.create_app`'s lifespan.
"""
