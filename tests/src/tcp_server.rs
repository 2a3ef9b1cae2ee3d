//! The accept loop the harness's TCP stand-ins share (the TLS terminator, the OAUTHBEARER login gate): a
//! thread with its own runtime that hands each connection to a handler until the server is dropped.

use std::future::Future;
use std::thread::JoinHandle;

/// Runs until dropped; dropping it stops accepting and waits for the thread.
pub struct TcpServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TcpServer {
    /// Accept on `listener` (bound already, so its port is known before any client tries it) and run
    /// `handle` on each connection as a task of its own.
    pub fn start<F, Fut>(listener: std::net::TcpListener, handle: F) -> Self
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        listener.set_nonblocking(true).unwrap();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let (client, _) = tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => match accepted {
                            Ok(a) => a,
                            Err(_) => {
                                // Out of descriptors, say: wait instead of spinning.
                                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                                continue;
                            }
                        },
                    };
                    tokio::spawn(handle(client));
                }
            });
        });
        TcpServer { stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
