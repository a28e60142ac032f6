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
