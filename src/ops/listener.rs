//! The listening socket as the server sees it: one that can stop accepting
//! before connections are closed, so a process handing over to its
//! successor stops taking new connections first and lets its keep-alive
//! clients move over before it closes anything.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct DrainableListener {
    inner: Option<TcpListener>,
    addr: SocketAddr,
    stop: watch::Receiver<bool>,
    /// False once the `StopAccepting` handle is gone: accept forever.
    watching: bool,
}

/// Tells a `DrainableListener` to stop accepting (and close its handle on
/// the socket; a successor holding the same socket keeps accepting).
#[derive(Clone)]
pub struct StopAccepting(watch::Sender<bool>);

impl StopAccepting {
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

impl DrainableListener {
    pub fn new(listener: TcpListener, addr: SocketAddr) -> (Self, StopAccepting) {
        let (tx, rx) = watch::channel(false);
        (
            Self {
                inner: Some(listener),
                addr,
                stop: rx,
                watching: true,
            },
            StopAccepting(tx),
        )
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

impl axum::serve::Listener for DrainableListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if *self.stop.borrow() {
                self.inner = None;
            }
            let Some(inner) = self.inner.as_mut() else {
                return std::future::pending().await;
            };
            tokio::select! {
                accepted = TcpListener::accept(inner) => match accepted {
                    Ok(conn) => return conn,
                    Err(e) if is_connection_error(&e) => {}
                    Err(e) => {
                        // Out of file descriptors and the like: back off
                        // instead of spinning.
                        tracing::error!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                },
                changed = self.stop.changed(), if self.watching => {
                    self.watching = changed.is_ok();
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
