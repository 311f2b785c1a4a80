"""National scale on Ray: the same library code, scheduled across machines by Ray.

- :mod:`.runtime`: connect to Ray (embedded on this machine, or a cluster by address).
- :mod:`.source`: the ``citizen_id,photo`` list (CSV or Parquet) and its stable split into shards.
- :mod:`.enrol_job`: bulk enrolment as a Ray Data job writing Parquet template shards.
- :mod:`.load`: loading those shards into the store (a separate step).
- :mod:`.shards`: the 1:N index split over Ray actors by a stable hash of the citizen id.
- :mod:`.screening`: bulk duplicate screening over the sharded index.

Thresholds at scale and the 100M capacity model are measured by ``python -m benchmarks scale``.

Nothing here is imported by the embedded single-machine path; Ray is only started when one of
these commands is asked for.
"""
