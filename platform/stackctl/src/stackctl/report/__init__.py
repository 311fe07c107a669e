"""`nox -s report`: what a change did to the model, the data and performance, against main.

collect (one JSON of what the tiers measured) -> compare (verdicts and regression gates) ->
render (Markdown and PNG plots); `python -m stackctl.report` runs the three.
"""
