"""What differs between the deployed stages: capacity, cost and how much may be lost by accident.

The functions' own settings (environment variables, memory, timeouts) are in ``.chalice/config.json`` under the
same stage names; this file holds what Chalice does not know about.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageSettings:
    name: str
    nat_gateways: int  # VPC functions reach SQS, Secrets Manager and @connections through NAT
    database_min_acu: float  # Aurora Serverless v2 capacity units (1 ACU is about 2 GiB of memory)
    database_max_acu: float
    database_readers: int  # a reader in a second zone takes over if the writer's zone fails
    cache_max_gb: int  # ElastiCache Serverless data storage limit
    cache_max_ecpu_per_second: int
    worker_max_concurrency: int  # worker instances the SQS event source may run at once (2 to 1,000)
    log_retention_days: int
    protect_data: bool  # deletion protection, and snapshots instead of deletion when the stack goes

    @property
    def app_name(self) -> str:
        return f"order-engine-{self.name}"


STAGES = {
    "dev": StageSettings(
        name="dev", nat_gateways=1, database_min_acu=0.5, database_max_acu=4, database_readers=0,
        cache_max_gb=1, cache_max_ecpu_per_second=5_000, worker_max_concurrency=20, log_retention_days=14,
        protect_data=False,
    ),
    "prod": StageSettings(
        name="prod", nat_gateways=2, database_min_acu=1, database_max_acu=32, database_readers=1,
        cache_max_gb=10, cache_max_ecpu_per_second=100_000, worker_max_concurrency=200, log_retention_days=90,
        protect_data=True,
    ),
}
