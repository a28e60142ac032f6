//! Rust SDK for Pulsyon.
//!
//! [`Client`] buffers events, cuts them into batches (by size or after a
//! short linger) and streams them over one `pulsyon.v1.Ingest/StreamEvents`
//! stream. Every batch carries this client's producer id and a sequence
//! number; batches stay in memory until the server acknowledges them, and
//! after a disconnect they are resent with the same (producer id, sequence),
//! which the server stores once. Memory is bounded: `send` waits when the
//! buffer is full, and no more than `max_in_flight` batches are unacknowledged.
//!
//! ```no_run
//! use pulsyon_client::{Client, ClientOptions, Event, now};
//!
//! # async fn demo() -> Result<(), pulsyon_client::Error> {
//! let client = Client::connect("http://127.0.0.1:50051", "pls_...").await?;
//! client
//!     .send(Event {
//!         event_id: pulsyon_client::new_event_id(),
//!         time: Some(now()),
//!         service: "checkout".into(),
//!         endpoint: "/api/v1/orders/{id}".into(),
//!         method: "GET".into(),
//!         status_code: 200,
//!         latency_ms: 12.5,
//!         ..Default::default()
//!     })
//!     .await?;
//! client.close().await?; // waits until every event is acknowledged
//! let stats = client.stats();
//! assert_eq!(stats.acked + stats.rejected, stats.sent);
//! # Ok(()) }
//! ```

// No panic reachable from input: errors are values (tests may unwrap; clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Status, metadata::MetadataValue, transport::Channel};
use tonic_types::StatusExt;

/// The generated messages and client of `pulsyon.v1`.
#[allow(
    missing_docs,
    clippy::all,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
pub mod proto {
    tonic::include_proto!("pulsyon.v1");
}

pub use proto::Event;
use proto::{EventBatch, StreamEventsRequest, ingest_client::IngestClient};

/// Most events the server takes in one batch.
pub const MAX_BATCH_EVENTS: usize = 10_000;

/// A new event id (UUIDv7: time-ordered, so the server's indexes stay compact).
pub fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The current time as a protobuf timestamp.
pub fn now() -> prost_types::Timestamp {
    prost_types::Timestamp::from(std::time::SystemTime::now())
}

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL is not a valid endpoint.
    #[error("invalid url: {0}")]
    InvalidUrl(String),
    /// The API key cannot be sent as a header.
    #[error("invalid api key: it must be printable ASCII")]
    InvalidKey,
    /// Connecting failed.
    #[error("cannot connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
}

/// Tuning of a [`Client`].
#[derive(Clone)]
pub struct ClientOptions {
    /// Events per batch (at most [`MAX_BATCH_EVENTS`]).
    pub batch_size: usize,
    /// Longest an event waits for its batch to fill.
    pub linger: Duration,
    /// Events buffered before `send` waits.
    pub max_buffered: usize,
    /// Batches sent and not yet acknowledged before the client stops cutting new ones.
    pub max_in_flight: usize,
    /// Identifier of this client across reconnects; a new UUIDv7 by default.
    /// The server recognises a resent batch by (producer id, sequence): reuse
    /// a producer id only with a clock that does not go back, since sequence
    /// numbers start at the current time in microseconds.
    pub producer_id: String,
    /// Longest pause between reconnection attempts.
    pub max_backoff: Duration,
    /// Called with the time from a batch's first send to its acknowledgement.
    pub on_ack: Option<Arc<dyn Fn(Duration) + Send + Sync>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            batch_size: 500,
            linger: Duration::from_millis(20),
            max_buffered: 50_000,
            max_in_flight: 8,
            producer_id: uuid::Uuid::now_v7().to_string(),
            max_backoff: Duration::from_secs(5),
            on_ack: None,
        }
    }
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("batch_size", &self.batch_size)
            .field("linger", &self.linger)
            .field("max_buffered", &self.max_buffered)
            .field("max_in_flight", &self.max_in_flight)
            .field("producer_id", &self.producer_id)
            .finish_non_exhaustive()
    }
}

/// Counters of a client, all in events (except `reconnects`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events handed to the server at least once.
    pub sent: u64,
    /// Events the server stored: accepted now or recognised as already stored.
    pub acked: u64,
    /// Of `acked`, those recognised as already stored (resent batches).
    pub duplicates: u64,
    /// Events the server refused (kept in its dead-letter store).
    pub rejected: u64,
    /// Events sent again after a disconnect.
    pub retried: u64,
    /// Events given up on (a batch the server refused as malformed).
    pub dropped: u64,
    /// Streams opened after the first.
    pub reconnects: u64,
}

impl std::iter::Sum for Stats {
    /// The counters of several clients together.
    fn sum<I: Iterator<Item = Stats>>(all: I) -> Stats {
        all.fold(Stats::default(), |a, s| Stats {
            sent: a.sent + s.sent,
            acked: a.acked + s.acked,
            duplicates: a.duplicates + s.duplicates,
            rejected: a.rejected + s.rejected,
            retried: a.retried + s.retried,
            dropped: a.dropped + s.dropped,
            reconnects: a.reconnects + s.reconnects,
        })
    }
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    acked: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    retried: AtomicU64,
    dropped: AtomicU64,
    reconnects: AtomicU64,
}

enum Command {
    Event(Box<Event>),
    Flush(oneshot::Sender<()>),
    Close(oneshot::Sender<()>),
}

/// A buffered, acknowledged event sender. Cheap to share behind an `Arc`.
pub struct Client {
    commands: mpsc::Sender<Command>,
    counters: Arc<Counters>,
    last_error: Arc<Mutex<Option<Status>>>,
}

impl Client {
    /// Connects with default options.
    pub async fn connect(url: &str, api_key: &str) -> Result<Client, Error> {
        Client::connect_with(url, api_key, ClientOptions::default()).await
    }

    /// Connects with `options`. The stream itself opens in the background and
    /// reopens by itself after a disconnect. `url` may name several servers,
    /// comma-separated (`http://a:50051,http://b:50051`): the stream opens on
    /// one that is up, and after a disconnect reopens on one that is.
    pub async fn connect_with(
        url: &str,
        api_key: &str,
        mut options: ClientOptions,
    ) -> Result<Client, Error> {
        // One server, or several (comma-separated) behind one balanced
        // channel: a stream reopens on a server that is up.
        let mut endpoints = Vec::new();
        for one in url.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            endpoints.push(
                Channel::from_shared(one.to_owned())
                    .map_err(|e| Error::InvalidUrl(e.to_string()))?
                    .tcp_nodelay(true)
                    .initial_stream_window_size(Some(1 << 20))
                    .initial_connection_window_size(Some(4 << 20))
                    .http2_keep_alive_interval(Duration::from_secs(30))
                    .keep_alive_while_idle(true)
                    .connect_timeout(Duration::from_secs(5)),
            );
        }
        let auth: MetadataValue<_> = format!("Bearer {api_key}")
            .parse()
            .map_err(|_| Error::InvalidKey)?;
        options.batch_size = options.batch_size.clamp(1, MAX_BATCH_EVENTS);
        options.max_in_flight = options.max_in_flight.max(1);
        let channel = match endpoints.len() {
            0 => return Err(Error::InvalidUrl("no server URL".into())),
            1 => endpoints.remove(0).connect_lazy(),
            _ => Channel::balance_list(endpoints.into_iter()),
        };
        let (commands, rx) = mpsc::channel(options.max_buffered.max(1));
        let counters = Arc::new(Counters::default());
        let last_error = Arc::new(Mutex::new(None));
        let driver = Driver {
            client: IngestClient::new(channel).max_decoding_message_size(16 << 20),
            auth,
            options,
            commands: rx,
            counters: counters.clone(),
            last_error: last_error.clone(),
            buffer: Vec::new(),
            first_buffered: None,
            // Sequence numbers start at the current time in microseconds, so
            // a restarted client that reuses its producer id keeps counting up
            // instead of repeating numbers the server already recorded.
            next_seq: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(1),
            unacked: BTreeMap::new(),
            waiters: Vec::new(),
            closing: false,
        };
        tokio::spawn(driver.run());
        Ok(Client {
            commands,
            counters,
            last_error,
        })
    }

    /// Queues one event; waits while the buffer is full.
    pub async fn send(&self, event: Event) -> Result<(), Error> {
        self.commands
            .send(Command::Event(Box::new(event)))
            .await
            .map_err(|_| Error::Closed)
    }

    /// Waits until every event sent so far is acknowledged.
    pub async fn flush(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Flush(tx))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Flushes, then ends the stream. Later calls fail with [`Error::Closed`].
    pub async fn close(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Close(tx))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            sent: c.sent.load(Ordering::Relaxed),
            acked: c.acked.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
        }
    }

    /// The last status that ended a stream, if any.
    pub fn last_error(&self) -> Option<Status> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// A batch kept until acknowledged.
struct Unacked {
    batch: EventBatch,
    first_sent: Instant,
}

/// The background task that owns the stream.
struct Driver {
    client: IngestClient<Channel>,
    auth: MetadataValue<tonic::metadata::Ascii>,
    options: ClientOptions,
    commands: mpsc::Receiver<Command>,
    counters: Arc<Counters>,
    last_error: Arc<Mutex<Option<Status>>>,
    /// Events of the batch being filled.
    buffer: Vec<Event>,
    /// When the oldest buffered event arrived (for the linger).
    first_buffered: Option<tokio::time::Instant>,
    next_seq: u64,
    /// Sent batches by sequence number, until acknowledged.
    unacked: BTreeMap<u64, Unacked>,
    /// Flush and close callers waiting for everything to be acknowledged.
    waiters: Vec<oneshot::Sender<()>>,
    closing: bool,
}

/// What ended a stream.
enum StreamEnd {
    /// The client is closed and everything is acknowledged.
    Done,
    /// Reconnect after this pause.
    Retry(Duration),
}

impl Driver {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        let mut opened_before = false;
        loop {
            match self.stream_once(&mut opened_before).await {
                StreamEnd::Done => return,
                StreamEnd::Retry(pause) => {
                    let pause = pause.max(backoff);
                    backoff = (backoff * 2).min(self.options.max_backoff);
                    // Keep taking events while disconnected, within the buffer bound.
                    let deadline = tokio::time::Instant::now() + pause;
                    while tokio::time::Instant::now() < deadline {
                        if !self.take_commands_until(deadline).await {
                            break;
                        }
                    }
                }
            }
            if self.unacked.is_empty() && self.buffer.is_empty() {
                backoff = Duration::from_millis(100);
            }
        }
    }

    /// Reads commands until `deadline`, without sending; false once the command channel is closed.
    async fn take_commands_until(&mut self, deadline: tokio::time::Instant) -> bool {
        if self.unacked.len() >= self.options.max_in_flight
            || self.buffer.len() >= self.options.batch_size
        {
            tokio::time::sleep_until(deadline).await;
            return true;
        }
        match tokio::time::timeout_at(deadline, self.commands.recv()).await {
            Ok(Some(command)) => {
                self.handle(command, None);
                true
            }
            Ok(None) => {
                self.closing = true;
                false
            }
            Err(_) => true,
        }
    }

    /// Opens a stream, resends what is unacknowledged, then runs until the stream ends.
    async fn stream_once(&mut self, opened_before: &mut bool) -> StreamEnd {
        let (tx, rx) = mpsc::channel::<StreamEventsRequest>(self.options.max_in_flight + 1);
        let mut request = Request::new(ReceiverStream::new(rx));
        request
            .metadata_mut()
            .insert("authorization", self.auth.clone());
        // Queue the resends before opening: the stream takes them first.
        let mut resent = 0;
        for pending in self.unacked.values() {
            resent += pending.batch.events.len() as u64;
            let _ = tx.try_send(StreamEventsRequest {
                batch: Some(pending.batch.clone()),
            });
        }
        let mut responses = match self.client.stream_events(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return self.ended(status),
        };
        if *opened_before {
            self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        *opened_before = true;
        self.counters.retried.fetch_add(resent, Ordering::Relaxed);
        loop {
            self.settle_waiters();
            if self.closing && self.buffer.is_empty() && self.unacked.is_empty() {
                return StreamEnd::Done;
            }
            let can_take = !self.closing && self.unacked.len() < self.options.max_in_flight;
            let linger_at = self.first_buffered.map(|t| t + self.options.linger);
            tokio::select! {
                command = self.commands.recv(), if can_take => match command {
                    Some(command) => self.handle(command, Some(&tx)),
                    None => {
                        self.closing = true;
                        self.cut(Some(&tx));
                    }
                },
                _ = sleep_until_opt(linger_at), if linger_at.is_some() && self.unacked.len() < self.options.max_in_flight => {
                    self.cut(Some(&tx));
                }
                message = responses.message() => match message {
                    Ok(Some(response)) => {
                        if let Some(ack) = response.ack {
                            self.acknowledge(ack);
                        }
                    }
                    Ok(None) => return StreamEnd::Retry(Duration::ZERO),
                    Err(status) => return self.ended(status),
                },
            }
        }
    }

    fn ended(&mut self, status: Status) -> StreamEnd {
        let retry = status
            .get_details_retry_info()
            .and_then(|r| r.retry_delay)
            .unwrap_or(Duration::ZERO);
        match status.code() {
            Code::InvalidArgument | Code::OutOfRange => {
                // The server refuses these batches as malformed; resending cannot help.
                let dropped: u64 = self
                    .unacked
                    .values()
                    .map(|u| u.batch.events.len() as u64)
                    .sum();
                tracing::error!(error = %status, events = dropped, "batches refused as malformed; dropping them");
                self.counters.dropped.fetch_add(dropped, Ordering::Relaxed);
                self.unacked.clear();
            }
            _ => {
                tracing::debug!(error = %status, retry_ms = retry.as_millis() as u64, "stream ended; reconnecting")
            }
        }
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
        StreamEnd::Retry(retry)
    }

    fn handle(&mut self, command: Command, tx: Option<&mpsc::Sender<StreamEventsRequest>>) {
        match command {
            Command::Event(mut event) => {
                if self.buffer.is_empty() {
                    self.first_buffered = Some(tokio::time::Instant::now());
                }
                // An event without an id gets one: the server stores an id once.
                if event.event_id.is_empty() {
                    event.event_id = new_event_id();
                }
                self.buffer.push(*event);
                if self.buffer.len() >= self.options.batch_size {
                    self.cut(tx);
                }
            }
            Command::Flush(waiter) => {
                self.cut(tx);
                self.waiters.push(waiter);
            }
            Command::Close(waiter) => {
                self.cut(tx);
                self.closing = true;
                self.waiters.push(waiter);
            }
        }
    }

    /// Turns the buffer into a batch and sends it if connected (otherwise it
    /// goes out with the resends of the next stream).
    fn cut(&mut self, tx: Option<&mpsc::Sender<StreamEventsRequest>>) {
        if self.buffer.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.buffer);
        self.first_buffered = None;
        let seq = self.next_seq;
        self.next_seq += 1;
        let batch = EventBatch {
            producer_id: self.options.producer_id.clone(),
            seq,
            events,
        };
        self.counters
            .sent
            .fetch_add(batch.events.len() as u64, Ordering::Relaxed);
        if let Some(tx) = tx {
            // Room is guaranteed: at most max_in_flight batches are unacknowledged.
            let _ = tx.try_send(StreamEventsRequest {
                batch: Some(batch.clone()),
            });
        }
        self.unacked.insert(
            seq,
            Unacked {
                batch,
                first_sent: Instant::now(),
            },
        );
    }

    fn acknowledge(&mut self, ack: proto::BatchAck) {
        let Some(done) = self.unacked.remove(&ack.seq) else {
            return;
        };
        let c = &self.counters;
        c.acked.fetch_add(
            u64::from(ack.accepted) + u64::from(ack.duplicates),
            Ordering::Relaxed,
        );
        c.duplicates
            .fetch_add(u64::from(ack.duplicates), Ordering::Relaxed);
        c.rejected
            .fetch_add(ack.rejections.len() as u64, Ordering::Relaxed);
        if let Some(on_ack) = &self.options.on_ack {
            on_ack(done.first_sent.elapsed());
        }
    }

    fn settle_waiters(&mut self) {
        if self.buffer.is_empty() && self.unacked.is_empty() {
            for waiter in self.waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
