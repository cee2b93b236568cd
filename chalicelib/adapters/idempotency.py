"""Powertools' idempotency records in Redis."""

from __future__ import annotations

from aws_lambda_powertools.utilities.idempotency.persistence.cache import CachePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord


class RedisIdempotencyStore(CachePersistenceLayer):
    """Powertools' cache persistence layer, keeping the payload hash on completed records.

    Powertools 3.37 rewrites a record without its validation hash when the call completes, so every repeat of a
    completed request fails payload validation (the bug fixed for TypeScript in powertools-lambda-typescript#5705).
    This writes the completed record with the hash; remove it once the Python layer keeps it too.
    """

    def _update_record(self, data_record: DataRecord) -> None:
        mapping = {
            self.data_attr: data_record.response_data,
            self.status_attr: data_record.status,
            self.expiry_attr: data_record.expiry_timestamp,
        }
        if self.payload_validation_enabled:
            mapping[self.validation_key_attr] = data_record.payload_hash
        self.client.set(
            name=data_record.idempotency_key,
            value=self._json_serializer(mapping),
            ex=self._get_expiry_second(data_record.expiry_timestamp),
        )
