"""A test kit for services written with :mod:`orra_sdk`.

Two levels:

- :func:`call` and :func:`call_revert` run a service's handler (or revert handler) on one
  task, as the SDK's worker does (input and output checked against the service's schemas,
  progress updates captured, the handler's exceptions raised unchanged), without a broker.
  They need the plain SDK only.
- :class:`Orra` runs services against a real nats-server with the real dispatcher (and,
  for :meth:`Orra.submit`, the offline planner) in the test's process; the ``orra``
  pytest fixture of :mod:`orra_sdk.testing.plugin` gives one on an embedded nats-server.
  This needs ``pip install 'orra-sdk[testing]'``.

Example (``pytest_plugins = ["orra_sdk.testing.plugin"]`` in ``conftest.py``)::

    from orra_sdk.testing import Orra, call

    async def test_charges(orra: Orra) -> None:
        called = await call(payment, {"orderId": "O1", "amount": 10})
        assert called.output["paymentStatus"] == "confirmed"

        await orra.serve(payment)
        outcome = await orra.run({"pay": (payment, {"orderId": "O1", "amount": 10})})
        assert outcome.status == "done"
"""

from orra_sdk.testing._call import Called, ProgressRecorder, call, call_revert
from orra_sdk.testing._harness import HarnessError, OrchestrationTimeout, Orra, Outcome, TaskSpec

__all__ = [
    "Called",
    "HarnessError",
    "OrchestrationTimeout",
    "Orra",
    "Outcome",
    "ProgressRecorder",
    "TaskSpec",
    "call",
    "call_revert",
]
