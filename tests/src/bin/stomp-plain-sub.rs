//! stomp-plain-sub: the limit for `scripts/bench stomp`, a plain STOMP subscriber that does only the
//! protocol's work: connect, subscribe with client-individual acks and the connector's prefetch, receive N
//! messages, acknowledge each, exit. It uses the connector's own codec, so the bench compares the pipeline
//! around it (records, converters, Kafka, acks after Kafka), not two parsers.
//! Usage: stomp-plain-sub PORT DESTINATION N [PREFETCH]

use connect_stomp::frame::{Frame, Item, StompCodec, Version};
use futures::{SinkExt, StreamExt};
use tokio_util::codec::Framed;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args[1].parse().expect("PORT");
    let destination = &args[2];
    let n: usize = args[3].parse().expect("N");
    let prefetch = args.get(4).cloned().unwrap_or_else(|| "4096".into());
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    stream.set_nodelay(true).unwrap();
    let mut framed = Framed::new(stream, StompCodec::new(64 << 20));
    framed.send(Item::Frame(Frame::new("CONNECT").header("accept-version", "1.2").header("host", "/"))).await.unwrap();
    loop {
        match framed.next().await.expect("CONNECTED").expect("a frame") {
            Item::Frame(f) if f.command == "CONNECTED" => break,
            Item::Frame(f) => panic!("{} {:?}", f.command, f.headers),
            Item::Heartbeat => {}
        }
    }
    framed.codec_mut().set_version(Version::V1_2);
    let subscribe = Frame::new("SUBSCRIBE")
        .header("id", "plain")
        .header("destination", destination.clone())
        .header("ack", "client-individual")
        .header("activemq.prefetchSize", prefetch.clone())
        .header("prefetch-count", prefetch);
    framed.send(Item::Frame(subscribe)).await.unwrap();
    let mut got = 0;
    while got < n {
        let Item::Frame(f) = framed.next().await.expect("a message").expect("a frame") else { continue };
        if f.command != "MESSAGE" {
            continue;
        }
        got += 1;
        let ack = Frame::new("ACK").header("id", f.get("ack").expect("an ack header").to_string());
        // Acks go out in batches of whatever arrived, as the connector's do.
        framed.feed(Item::Frame(ack)).await.unwrap();
        if framed.read_buffer().is_empty() || got == n {
            framed.flush().await.unwrap();
        }
    }
    framed.send(Item::Frame(Frame::new("DISCONNECT").header("receipt", "bye"))).await.unwrap();
    while let Some(Ok(item)) = framed.next().await {
        if matches!(item, Item::Frame(ref f) if f.command == "RECEIPT") {
            break;
        }
    }
}
