//! The ingest buffer's record of a batch: `pulsyon.internal.v1.BufferedBatch`
//! (proto/pulsyon/internal/v1/buffer.proto), versioned and guarded by `buf
//! breaking` like the public contract, since one version writes what the
//! next reads. Given to the buffer (src/redis) as an `ingest::RecordCodec`,
//! so that the buffer knows no wire format.

use prost::Message;

use crate::api::convert;
use crate::{
    domain::{BatchWrite, DeadLetter, Event, TenantId},
    ingest::{RecordCodec, RecordError, ReplyTo},
    proto::{internal as rec, v1 as pb},
};

/// The record version this build writes and reads.
pub const VERSION: u32 = 1;

/// The protobuf codec of buffered batches.
#[derive(Debug, Clone, Copy, Default)]
pub struct BufferRecord;

fn event_from_pb(e: pb::Event) -> Result<Event, RecordError> {
    let invalid = |m: &str| RecordError::Invalid(m.to_owned());
    let time = e
        .time
        .as_ref()
        .and_then(convert::from_timestamp)
        .ok_or_else(|| invalid("an event without a valid time"))?;
    Ok(Event {
        event_id: e.event_id.parse().map_err(|_| {
            RecordError::Invalid(format!("event id {:?} is not a UUID", e.event_id))
        })?,
        time,
        service: e.service,
        endpoint: e.endpoint,
        method: e.method,
        status_code: i16::try_from(e.status_code)
            .map_err(|_| invalid("status code out of range"))?,
        latency_ms: e.latency_ms,
        trace_id: e.trace_id,
        request_id: e.request_id,
        attributes: e.attributes.into_iter().collect(),
        environment: e.environment,
        release: e.release,
        host: e.host,
        request_bytes: i64::try_from(e.request_bytes)
            .map_err(|_| invalid("request bytes out of range"))?,
        response_bytes: i64::try_from(e.response_bytes)
            .map_err(|_| invalid("response bytes out of range"))?,
    })
}

impl RecordCodec for BufferRecord {
    fn encode(&self, b: &BatchWrite, reply: Option<&ReplyTo>) -> Vec<u8> {
        rec::BufferedBatch {
            version: VERSION,
            tenant_id: b.tenant_id.0,
            producer_id: b.producer_id.clone(),
            seq: b.seq,
            received_at: Some(convert::timestamp(b.received_at)),
            events: b.events.iter().map(convert::event_to_pb).collect(),
            rejected: b
                .rejected
                .iter()
                .map(|d| rec::BufferedDeadLetter {
                    index: d.index,
                    reason: convert::reject_reason_to_pb(d.reason),
                    message: d.message.clone(),
                    payload: d.payload.clone(),
                })
                .collect(),
            overflowed: b.overflowed as u32,
            digest: b.digest.to_vec(),
            reply_stream: reply.map(|r| r.stream.clone()).unwrap_or_default(),
            reply_id: reply.map(|r| r.id.clone()).unwrap_or_default(),
        }
        .encode_to_vec()
    }

    fn decode(&self, bytes: &[u8]) -> Result<(BatchWrite, Option<ReplyTo>), RecordError> {
        let invalid = |m: &str| RecordError::Invalid(m.to_owned());
        let r = rec::BufferedBatch::decode(bytes)
            .map_err(|e| RecordError::Undecodable(e.to_string()))?;
        if r.version != VERSION {
            return Err(RecordError::Version {
                found: r.version,
                reads: VERSION,
            });
        }
        let received_at = r
            .received_at
            .as_ref()
            .and_then(convert::from_timestamp)
            .ok_or_else(|| invalid("a record without a valid received_at"))?;
        let digest: [u8; 32] = r
            .digest
            .as_slice()
            .try_into()
            .map_err(|_| invalid("a digest that is not 32 bytes"))?;
        let events = r
            .events
            .into_iter()
            .map(event_from_pb)
            .collect::<Result<Vec<_>, _>>()?;
        let rejected = r
            .rejected
            .into_iter()
            .map(|d| {
                Ok(DeadLetter {
                    index: d.index,
                    reason: convert::reject_reason_from_pb(d.reason).ok_or_else(|| {
                        RecordError::Invalid(format!("unknown reject reason {}", d.reason))
                    })?,
                    message: d.message,
                    payload: d.payload,
                })
            })
            .collect::<Result<Vec<_>, RecordError>>()?;
        let reply = (!r.reply_stream.is_empty()).then_some(ReplyTo {
            stream: r.reply_stream,
            id: r.reply_id,
        });
        Ok((
            BatchWrite {
                tenant_id: TenantId(r.tenant_id),
                producer_id: r.producer_id,
                seq: r.seq,
                received_at,
                events,
                rejected,
                overflowed: r.overflowed as usize,
                digest,
            },
            reply,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RejectReason;

    fn batch() -> BatchWrite {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_796_000_000_123_456_789).unwrap();
        BatchWrite {
            tenant_id: TenantId(7),
            producer_id: "p-1".into(),
            seq: 42,
            received_at: t,
            events: vec![Event {
                event_id: uuid::Uuid::now_v7(),
                time: t,
                service: "checkout".into(),
                endpoint: "/pay/{id}".into(),
                method: "POST".into(),
                status_code: 503,
                latency_ms: 12.5,
                trace_id: "t".into(),
                request_id: "r".into(),
                attributes: vec![("a".into(), "1".into()), ("b".into(), "2".into())],
                environment: "prod".into(),
                release: "v1".into(),
                host: "h".into(),
                request_bytes: 10,
                response_bytes: 20,
            }],
            rejected: vec![DeadLetter {
                index: 1,
                reason: RejectReason::InvalidStatusCode,
                message: "status 999".into(),
                payload: vec![1, 2, 3],
            }],
            overflowed: 0,
            digest: [9; 32],
        }
    }

    #[test]
    fn a_batch_and_its_reply_survive_the_record() {
        let reply = ReplyTo {
            stream: "acks:node".into(),
            id: "17".into(),
        };
        let sent = batch();
        let bytes = BufferRecord.encode(&sent, Some(&reply));
        let (back, back_reply) = BufferRecord.decode(&bytes).unwrap();
        assert_eq!(back, sent);
        assert_eq!(back_reply, Some(reply));
        let (_, none) = BufferRecord
            .decode(&BufferRecord.encode(&batch(), None))
            .unwrap();
        assert_eq!(none, None);
    }

    #[test]
    fn garbage_and_unknown_versions_are_refused_not_guessed() {
        assert!(matches!(
            BufferRecord.decode(b"\xff\xff\xff"),
            Err(RecordError::Undecodable(_))
        ));
        let mut future =
            rec::BufferedBatch::decode(BufferRecord.encode(&batch(), None).as_slice()).unwrap();
        future.version = 2;
        let err = BufferRecord.decode(&future.encode_to_vec()).unwrap_err();
        assert_eq!(
            err,
            RecordError::Version {
                found: 2,
                reads: VERSION
            }
        );
        assert!(err.to_string().contains("version 2"), "{err}");
    }
}
