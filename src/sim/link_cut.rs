//! A userspace TCP proxy the project owns, to cut and restore a link on demand (the demo's
//! uplink outage, the tests' network faults) without root or `tc netem`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Control handle of a running proxy.
#[derive(Clone)]
pub struct LinkCut {
    down: Arc<AtomicBool>,
    epoch: watch::Sender<u64>,
    counter: Arc<AtomicU64>,
    /// Address clients connect to.
    pub addr: SocketAddr,
}

impl LinkCut {
    /// Listens on `listen` and relays to `target`.
    pub async fn start(listen: SocketAddr, target: SocketAddr) -> std::io::Result<LinkCut> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (epoch, _) = watch::channel(0u64);
        let cut = LinkCut {
            down: Arc::new(AtomicBool::new(false)),
            epoch,
            counter: Arc::new(AtomicU64::new(0)),
            addr,
        };
        let c = cut.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if c.down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut_rx = c.epoch.subscribe();
                tokio::spawn(async move {
                    let Ok(mut upstream) = TcpStream::connect(target).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Ok(cut)
    }

    /// Cuts the link: open connections are dropped, new ones refused until [`Self::restore`].
    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        self.epoch.send_replace(n);
    }

    /// Restores the link.
    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}
