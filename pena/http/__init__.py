"""HTTP plumbing shared by every service, one module per responsibility:

- `app`: the app factory (`create_app`) that mounts the services' routers on one FastAPI app
- `deps`: the dependencies routes use (`session_dependency`, `ClockDep`, `SettingsDep`, ...)
- `bodies`: `StrictModel`, the base of request bodies
- `middleware`: request context (ids, traceparent), body-size cap, rate limit, metrics, access log
- `ops`: health, readiness, metrics, clock and dead-letter operations routes
- `screening`: U+0000 refused in query, path and JSON body values
- `uploads`: the one decoder of uploaded text files (`uploaded_text`)
"""
