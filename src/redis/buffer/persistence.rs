//! How each Redis keeps its data: read at start-up, since an entry is as
//! durable as its Redis's own persistence (Redis 7.0 has no WAITAOF).

use super::{BufferError, Conn};

/// How a Redis keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persistence {
    /// `appendonly`.
    pub appendonly: bool,
    /// `appendfsync` (`always`, `everysec`, `no`).
    pub appendfsync: String,
    /// `save` (RDB snapshot rules; empty: none).
    pub save: String,
}

impl Persistence {
    /// Whether a write acknowledged by this Redis survives its restart.
    pub fn volatile(&self) -> bool {
        !self.appendonly
    }
}

async fn config_get(conn: &mut Conn, name: &str) -> redis::RedisResult<String> {
    let pair: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async(conn)
        .await?;
    Ok(pair.get(1).cloned().unwrap_or_default())
}

/// How each Redis of `urls` keeps its data (each node of a cluster).
pub async fn persistence(urls: &[String]) -> Result<Vec<(String, Persistence)>, BufferError> {
    let mut out = Vec::new();
    for url in urls {
        let mut conn = Conn::open(std::slice::from_ref(url), false).await?;
        out.push((
            url.clone(),
            Persistence {
                appendonly: config_get(&mut conn, "appendonly").await? == "yes",
                appendfsync: config_get(&mut conn, "appendfsync").await?,
                save: config_get(&mut conn, "save").await?,
            },
        ));
    }
    Ok(out)
}
