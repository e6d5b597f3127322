"""Git and DVC: the lock merge driver, the stage graph drawn for markdown, and `import-dvc`.
SPEC [tool.git]. Imports the layers below it, never the CLI.
"""
