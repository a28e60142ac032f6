//! One Redis or a Redis Cluster, behind one connection type.

use std::time::Duration;

use redis::{
    Cmd, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClientBuilder,
    cluster_async::ClusterConnection,
};

/// A multiplexed connection to one Redis (reconnecting by itself) or to a
/// Redis Cluster (following its slots).
#[derive(Clone)]
pub enum Conn {
    /// One Redis.
    Single(ConnectionManager),
    /// A cluster.
    Cluster(ClusterConnection),
}

/// Longest wait for an answer.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

impl Conn {
    /// Connects to `urls`: one Redis, or the seeds of a cluster.
    pub async fn open(urls: &[String], cluster: bool) -> redis::RedisResult<Conn> {
        if cluster {
            let client = ClusterClientBuilder::new(urls.to_vec())
                .connection_timeout(RESPONSE_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                .retries(2)
                .build()?;
            Ok(Conn::Cluster(client.get_async_connection().await?))
        } else {
            let client = redis::Client::open(urls[0].as_str())?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(RESPONSE_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(1);
            Ok(Conn::Single(
                ConnectionManager::new_with_config(client, config).await?,
            ))
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// A connection made on first use and kept: one Redis or a cluster.
pub struct Lazy {
    urls: Vec<String>,
    cluster: bool,
    conn: tokio::sync::Mutex<Option<Conn>>,
}

impl Lazy {
    /// To `urls` (one Redis, or a cluster's seeds).
    pub fn new(urls: &[String], cluster: bool) -> Lazy {
        Lazy {
            urls: urls.to_vec(),
            cluster,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    /// The connection, made now if there is none (within `wait`).
    pub async fn get(&self, wait: Duration) -> Result<Conn, String> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = &*guard {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(wait, Conn::open(&self.urls, self.cluster))
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        *guard = Some(c.clone());
        Ok(c)
    }

    /// The connection if one is made, without waiting.
    pub fn made(&self) -> Option<Conn> {
        self.conn.try_lock().ok().and_then(|c| c.clone())
    }
}
