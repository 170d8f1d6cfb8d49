"""Submission of the series: patches/ -> cover letter, recipients, b4 emails.

One job per module:

| module | job |
|---|---|
| ``config.py`` | read the ``[submit]`` section of ``submit.toml`` |
| ``checks.py`` | read the latest check-series JSON; the send gate |
| ``bench.py`` | the newest benchmark run's figures for the cover letter (bench's reader) |
| ``cover.py`` | split the cover text into sections; render the jinja2 cover |
| ``recipients.py`` | ``scripts/get_maintainer.pl`` per patch and for the cover, merged |
| ``worktree.py`` | the scratch worktree and branches the series is posted from |
| ``b4run.py`` | run b4 (prep, send, trailers) with the options this project needs |
| ``emails.py`` | parse the written emails back and check them |
| ``cli.py`` | ``tools/submit-series`` |
"""
