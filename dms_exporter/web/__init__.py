"""The HTTP surface: the listener and its limits (``server``), the guard before every route
(``guard``), the routes of ``/metrics``, health, API and admin actions (``app``), and the operator
console (``console``)."""
