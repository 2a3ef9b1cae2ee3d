//! lines-producer TOPIC: every line of standard input as one record, with the worker's delivery guarantees
//! (idempotent, acks=all); the plain client of `scripts/bench http-source` (`curl | gunzip | lines-producer`).

use connect_e2e::plain_producer_config;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::io::BufRead;
use std::time::Duration;

fn main() {
    let topic = std::env::args().nth(1).expect("usage: lines-producer TOPIC");
    let producer: ThreadedProducer<DefaultProducerContext> = plain_producer_config().create().expect("producer");
    let stdin = std::io::stdin().lock();
    let mut n = 0u64;
    for line in stdin.split(b'\n') {
        let line = line.expect("stdin");
        if line.is_empty() {
            continue;
        }
        let mut record = BaseRecord::<(), [u8]>::to(&topic).payload(&line[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
        n += 1;
    }
    producer.flush(Duration::from_secs(300)).expect("flush");
    eprintln!("lines-producer: {n} records");
}
