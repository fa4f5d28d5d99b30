//! The blobber: an app written only against the upstream
//! `wasi:blobstore@0.2.0-draft` WIT (vendored in `wit-blobstore/`), with no
//! import of this project's own. Every result is checked; the first that
//! is wrong prints `blobber: ...` to stderr and exits 1.
//!
//! - (no argument) `scenario`: containers (create, get, exists, info,
//!   delete), objects written (the value written before and after
//!   `write-data`, and to two objects at once), read whole and in ranges
//!   (synchronously and through streams, 5 MiB across pieces), listed
//!   (read and skip), copied, moved, deleted one and several at a time,
//!   cleared; invalid names and ranges refused. Leaves container `kept`
//!   with object `greeting` = `hello`. Prints `blobber: all checks passed`.
//! - `probe CONTAINER`: prints `present N` (its object count) or `absent`.
//! - `put CONTAINER OBJECT`: stores stdin as the object (the container is
//!   created if missing); prints `stored N`.
//! - `get CONTAINER OBJECT`: prints the object's bytes.
//! - `hostile-values`: opens outgoing values without end (the host traps
//!   it at its limit).
//! - `hostile-reads`: holds values and value streams until refused;
//!   prints `held N: ERROR`.
//! - `hostile-handles`: opens containers until refused; prints `held N: ERROR`.
//! - `exists-loop CONTAINER`: asks whether CONTAINER exists again and
//!   again, until the host stops it (out of fuel).
//! - `hostile-write MIB`: writes MIB MiB to one value until refused;
//!   prints `refused after N bytes: ERROR` and `finish: ERROR`.

wit_bindgen::generate!({
    path: "../../../wit-blobstore",
    world: "wasi:blobstore/imports",
    generate_all,
});

use std::fmt::Debug;
use std::io::Read;

use wasi::blobstore::blobstore;
use wasi::blobstore::container::Container;
use wasi::blobstore::types::{IncomingValue, ObjectId, OutgoingValue};
use wasi::io::streams::{InputStream, StreamError};

fn fail(message: String) -> ! {
    eprintln!("blobber: {message}");
    std::process::exit(1)
}

fn ok<T, E: Debug>(result: Result<T, E>, what: &str) -> T {
    result.unwrap_or_else(|e| fail(format!("{what}: {e:?}")))
}

fn refused<T: Debug, E: Debug>(result: Result<T, E>, what: &str) -> E {
    match result {
        Ok(v) => fail(format!("{what}: expected an error, got {v:?}")),
        Err(e) => e,
    }
}

fn check(cond: bool, what: &str) {
    if !cond {
        fail(format!("check failed: {what}"));
    }
}

fn same<T: PartialEq + Debug>(got: T, want: T, what: &str) {
    if got != want {
        fail(format!("{what}: got {got:?}, want {want:?}"));
    }
}

/// A stream error as text (a failed operation's error is a resource).
fn stream_error(e: &StreamError) -> String {
    match e {
        StreamError::LastOperationFailed(e) => e.to_debug_string(),
        StreamError::Closed => "closed".to_string(),
    }
}

fn arg(n: usize) -> String {
    std::env::args().nth(n).unwrap_or_default()
}

/// Writes `data` to `value`'s body stream, `check-write` permits at a time.
fn write_body(value: &OutgoingValue, data: &[u8]) -> Result<(), StreamError> {
    let stream = ok(
        value.outgoing_value_write_body(),
        "outgoing-value-write-body",
    );
    let mut rest = data;
    while !rest.is_empty() {
        let permit = stream.check_write()?;
        if permit == 0 {
            stream.subscribe().block();
            continue;
        }
        let n = rest
            .len()
            .min(usize::try_from(permit).unwrap_or(usize::MAX));
        let (now, later) = rest.split_at(n);
        stream.write(now)?;
        rest = later;
    }
    stream.flush()?;
    Ok(())
}

/// Stores `data` as `name` in `c`: body, then `write-data`, then `finish`.
fn write(c: &Container, name: &str, data: &[u8]) {
    let value = OutgoingValue::new_outgoing_value();
    if let Err(e) = write_body(&value, data) {
        fail(format!("writing a value: {}", stream_error(&e)));
    }
    ok(c.write_data(name, &value), "write-data");
    ok(OutgoingValue::finish(value), "finish");
}

fn read_stream(stream: InputStream) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        match stream.blocking_read(1 << 20) {
            Ok(bytes) => out.extend(bytes),
            Err(StreamError::Closed) => return out,
            Err(e) => fail(format!("reading a value: {}", stream_error(&e))),
        }
    }
}

/// Bytes `start..=end` of `name`, read synchronously.
fn read(c: &Container, name: &str, start: u64, end: u64) -> Vec<u8> {
    let value = ok(c.get_data(name, start, end), "get-data");
    ok(
        IncomingValue::incoming_value_consume_sync(value),
        "consume-sync",
    )
}

/// Bytes `start..=end` of `name`, read through its stream.
fn read_async(c: &Container, name: &str, start: u64, end: u64) -> Vec<u8> {
    let value = ok(c.get_data(name, start, end), "get-data");
    read_stream(ok(
        IncomingValue::incoming_value_consume_async(value),
        "consume-async",
    ))
}

fn list(c: &Container) -> Vec<String> {
    let stream = ok(c.list_objects(), "list-objects");
    let mut all = Vec::new();
    loop {
        let (names, done) = ok(
            stream.read_stream_object_names(2),
            "read-stream-object-names",
        );
        all.extend(names);
        if done {
            break;
        }
    }
    all.sort();
    all
}

fn id(container: &str, object: &str) -> ObjectId {
    ObjectId {
        container: container.into(),
        object: object.into(),
    }
}

/// 5 MiB and 3 bytes, none of them the same as its neighbours' for long.
fn big() -> Vec<u8> {
    (0..(5u32 << 20) + 3)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn scenario() {
    let name = "scenario";
    same(
        ok(blobstore::container_exists(name), "exists"),
        false,
        "exists before",
    );
    refused(
        blobstore::get_container(name),
        "get-container before create",
    );
    let c = ok(blobstore::create_container(name), "create-container");
    refused(blobstore::create_container(name), "create-container twice");
    same(
        ok(blobstore::container_exists(name), "exists"),
        true,
        "exists after",
    );
    same(ok(c.name(), "name"), name.to_string(), "name");
    let info = ok(c.info(), "info");
    same(info.name.as_str(), name, "info name");
    check(
        info.created_at > 1_600_000_000,
        "created-at is seconds since 1970",
    );
    same(list(&c), Vec::<String>::new(), "a new container is empty");

    // Objects: small, and 5 MiB (more than one 4 MiB piece).
    write(&c, "a.txt", b"hello world");
    let big = big();
    write(&c, "big.bin", &big);
    // write-data before the body is written (both orders work).
    let value = OutgoingValue::new_outgoing_value();
    ok(c.write_data("b.txt", &value), "write-data first");
    ok(write_body(&value, b"second"), "writing after write-data");
    ok(OutgoingValue::finish(value), "finish");
    write(&c, "dir/d.txt", b"");
    check(ok(c.has_object("a.txt"), "has-object"), "a.txt is there");
    check(!ok(c.has_object("nope"), "has-object"), "nope is not");

    let meta = ok(c.object_info("a.txt"), "object-info");
    same(meta.name.as_str(), "a.txt", "object-info name");
    same(meta.container.as_str(), name, "object-info container");
    same(meta.size, 11, "object-info size");
    check(meta.created_at > 1_600_000_000, "object created-at");
    same(
        ok(c.object_info("big.bin"), "object-info").size,
        big.len() as u64,
        "big size",
    );
    refused(c.object_info("nope"), "object-info of nothing");

    // Whole and ranges (inclusive ends; an end past the object is cut).
    same(
        read(&c, "a.txt", 0, u64::MAX),
        b"hello world".to_vec(),
        "whole",
    );
    same(read(&c, "a.txt", 6, 10), b"world".to_vec(), "range");
    same(read(&c, "a.txt", 6, 6), b"w".to_vec(), "one byte");
    same(read(&c, "a.txt", 11, 20), Vec::new(), "at the end");
    same(read(&c, "dir/d.txt", 0, 0), Vec::new(), "empty object");
    refused(c.get_data("a.txt", 12, 20), "start past the end");
    refused(c.get_data("a.txt", 5, 4), "start after end");
    refused(c.get_data("nope", 0, 1), "get-data of nothing");
    let value = ok(c.get_data("a.txt", 0, 4), "get-data");
    same(value.size(), 5, "incoming-value size");
    same(
        ok(
            IncomingValue::incoming_value_consume_sync(value),
            "consume-sync",
        ),
        b"hello".to_vec(),
        "sized value",
    );
    same(
        read_async(&c, "a.txt", 0, u64::MAX),
        b"hello world".to_vec(),
        "async small",
    );
    check(
        read_async(&c, "big.bin", 0, u64::MAX) == big,
        "the big object through a stream",
    );
    check(
        read(&c, "big.bin", 0, u64::MAX) == big,
        "the big object at once",
    );
    let (at, to) = ((4u64 << 20) - 2, (4u64 << 20) + 5);
    check(
        read(&c, "big.bin", at, to) == big[at as usize..=to as usize],
        "a range across pieces",
    );
    let end = big.len() as u64 - 2;
    check(
        read_async(&c, "big.bin", 1, end) == big[1..=end as usize],
        "a long range through a stream",
    );

    // Listing, read and skipped.
    let all = ["a.txt", "b.txt", "big.bin", "dir/d.txt"]
        .map(String::from)
        .to_vec();
    same(list(&c), all.clone(), "list-objects");
    let stream = ok(c.list_objects(), "list-objects");
    same(
        ok(stream.skip_stream_object_names(1), "skip"),
        (1, false),
        "skip one",
    );
    let (rest, done) = ok(stream.read_stream_object_names(100), "read the rest");
    same(rest.len(), 3, "three after one skipped");
    check(done, "the listing is over");
    same(
        ok(stream.read_stream_object_names(1), "read past the end"),
        (Vec::new(), true),
        "nothing after the end",
    );
    drop(stream);

    // Copy and move, within a container and to another.
    refused(
        blobstore::copy_object(&id(name, "a.txt"), &id("second", "x")),
        "copy to a missing container",
    );
    let second = ok(blobstore::create_container("second"), "create second");
    ok(
        blobstore::copy_object(&id(name, "a.txt"), &id(name, "copy.txt")),
        "copy",
    );
    same(
        read(&c, "copy.txt", 0, u64::MAX),
        b"hello world".to_vec(),
        "copied",
    );
    ok(
        blobstore::copy_object(&id(name, "big.bin"), &id("second", "big.bin")),
        "copy across",
    );
    check(
        read(&second, "big.bin", 0, u64::MAX) == big,
        "copied across",
    );
    ok(
        blobstore::move_object(&id(name, "b.txt"), &id("second", "moved.txt")),
        "move",
    );
    check(!ok(c.has_object("b.txt"), "has-object"), "moved away");
    same(
        read(&second, "moved.txt", 0, u64::MAX),
        b"second".to_vec(),
        "moved",
    );
    ok(
        blobstore::move_object(&id("second", "moved.txt"), &id("second", "moved.txt")),
        "move onto itself",
    );
    check(
        ok(second.has_object("moved.txt"), "has-object"),
        "a move onto itself keeps it",
    );
    refused(
        blobstore::move_object(&id(name, "nope"), &id(name, "x")),
        "move of nothing",
    );

    // Deleting.
    ok(c.delete_object("copy.txt"), "delete-object");
    ok(c.delete_object("copy.txt"), "delete-object again");
    check(!ok(c.has_object("copy.txt"), "has-object"), "deleted");
    ok(
        c.delete_objects(&[
            "a.txt".to_string(),
            "dir/d.txt".to_string(),
            "nope".to_string(),
        ]),
        "delete-objects",
    );
    same(
        list(&c),
        vec!["big.bin".to_string()],
        "after delete-objects",
    );

    // One value written to two objects; a held value outlives its object.
    let value = OutgoingValue::new_outgoing_value();
    ok(write_body(&value, b"twice"), "writing");
    ok(second.write_data("one", &value), "write-data one");
    ok(second.write_data("two", &value), "write-data two");
    ok(OutgoingValue::finish(value), "finish");
    same(
        read(&second, "two", 0, 100),
        b"twice".to_vec(),
        "the second target",
    );
    let held = ok(second.get_data("one", 0, 100), "get-data");
    ok(second.delete_object("one"), "delete-object");
    same(
        ok(
            IncomingValue::incoming_value_consume_sync(held),
            "consume-sync",
        ),
        b"twice".to_vec(),
        "a value outlives its object",
    );

    // A value's body is taken once; a value finished unwritten stores nothing.
    let value = OutgoingValue::new_outgoing_value();
    let body = ok(value.outgoing_value_write_body(), "write-body");
    refused(value.outgoing_value_write_body(), "write-body twice");
    drop(body);
    ok(OutgoingValue::finish(value), "finish without write-data");
    let value = OutgoingValue::new_outgoing_value();
    ok(write_body(&value, b"dropped"), "writing");
    ok(second.write_data("dropped", &value), "write-data");
    drop(value);
    check(
        !ok(second.has_object("dropped"), "has-object"),
        "a dropped value is not stored",
    );

    // Invalid names.
    refused(
        blobstore::create_container("a/b"),
        "a container name with '/'",
    );
    refused(blobstore::create_container(""), "an empty container name");
    refused(c.has_object(""), "an empty object name");
    refused(c.has_object(&"x".repeat(300)), "an object name too long");

    // Clearing and deleting containers.
    ok(second.clear(), "clear");
    same(list(&second), Vec::<String>::new(), "cleared");
    check(
        ok(blobstore::container_exists("second"), "exists"),
        "a cleared container stays",
    );
    drop(second);
    ok(blobstore::delete_container("second"), "delete-container");
    check(
        !ok(blobstore::container_exists("second"), "exists"),
        "deleted container",
    );
    refused(
        blobstore::delete_container("second"),
        "delete-container twice",
    );
    drop(c);
    ok(blobstore::delete_container(name), "delete-container");
    refused(blobstore::get_container(name), "get-container after delete");

    let kept = match blobstore::get_container("kept") {
        Ok(c) => c,
        Err(_) => ok(blobstore::create_container("kept"), "create kept"),
    };
    write(&kept, "greeting", b"hello");
    println!("blobber: all checks passed");
}

fn main() {
    match arg(1).as_str() {
        "" | "scenario" => scenario(),
        "probe" => match blobstore::get_container(&arg(2)) {
            Ok(c) => println!("present {}", list(&c).len()),
            Err(_) => {
                check(
                    !ok(blobstore::container_exists(&arg(2)), "exists"),
                    "exists agrees",
                );
                println!("absent");
            }
        },
        "put" => {
            let mut data = Vec::new();
            ok(std::io::stdin().read_to_end(&mut data), "stdin");
            let c = match blobstore::get_container(&arg(2)) {
                Ok(c) => c,
                Err(_) => ok(blobstore::create_container(&arg(2)), "create-container"),
            };
            let value = OutgoingValue::new_outgoing_value();
            if let Err(e) = write_body(&value, &data) {
                fail(format!("writing: {}", stream_error(&e)));
            }
            ok(c.write_data(&arg(3), &value), "write-data");
            ok(OutgoingValue::finish(value), "finish");
            println!("stored {}", data.len());
        }
        "get" => {
            let c = ok(blobstore::get_container(&arg(2)), "get-container");
            let data = read(&c, &arg(3), 0, u64::MAX);
            print!("{}", String::from_utf8_lossy(&data));
        }
        "hostile-values" => {
            let mut held = Vec::new();
            loop {
                held.push(OutgoingValue::new_outgoing_value());
                eprintln!("blobber: {} values open", held.len());
            }
        }
        "hostile-reads" => {
            let c = match blobstore::get_container("hostile") {
                Ok(c) => c,
                Err(_) => ok(blobstore::create_container("hostile"), "create-container"),
            };
            write(&c, "x", b"some bytes");
            let (mut values, mut streams) = (Vec::new(), Vec::new());
            let error = loop {
                match c.get_data("x", 0, 100) {
                    Ok(v) if values.len() <= streams.len() => values.push(v),
                    Ok(v) => streams.push(ok(
                        IncomingValue::incoming_value_consume_async(v),
                        "consume-async",
                    )),
                    Err(e) => break e,
                }
            };
            println!("held {}: {error}", values.len() + streams.len());
        }
        "hostile-handles" => {
            ok(blobstore::create_container("h"), "create-container");
            let mut held = Vec::new();
            let error = loop {
                match blobstore::get_container("h") {
                    Ok(c) => held.push(c),
                    Err(e) => break e,
                }
            };
            println!("held {}: {error}", held.len());
        }
        "hostile-write" => {
            let mib: usize = arg(2).parse().unwrap_or(64);
            let c = ok(blobstore::create_container("w"), "create-container");
            let value = OutgoingValue::new_outgoing_value();
            let stream = ok(value.outgoing_value_write_body(), "write-body");
            let chunk = vec![7u8; 1 << 20];
            let mut written = 0usize;
            let error = loop {
                if written >= mib << 20 {
                    break None;
                }
                let step = stream.check_write().and_then(|permit| {
                    let n = chunk.len().min(permit as usize);
                    stream.write(&chunk[..n]).map(|()| n)
                });
                match step {
                    Ok(n) => written += n,
                    Err(e) => break Some(e),
                }
            };
            let error = error.as_ref().map(stream_error);
            println!("refused after {written} bytes: {error:?}");
            drop(stream);
            ok(c.write_data("big", &value), "write-data");
            let finished = OutgoingValue::finish(value);
            println!("finish: {finished:?}");
            check(!ok(c.has_object("big"), "has-object"), "nothing stored");
        }
        "tiny-writes" => {
            // N writes of LEN bytes each to one value, then stored.
            let n: usize = arg(2).parse().unwrap_or(1000);
            let len: usize = arg(3).parse().unwrap_or(1);
            let c = ok(blobstore::create_container("t"), "create-container");
            let value = OutgoingValue::new_outgoing_value();
            let stream = ok(value.outgoing_value_write_body(), "write-body");
            let piece = vec![3u8; len];
            for _ in 0..n {
                if let Err(e) = stream.write(&piece) {
                    fail(format!("writing: {}", stream_error(&e)));
                }
            }
            drop(stream);
            ok(c.write_data("tiny", &value), "write-data");
            ok(OutgoingValue::finish(value), "finish");
            println!("stored {}", n * len);
        }
        "exists-loop" => {
            let name = arg(2);
            loop {
                let _ = std::hint::black_box(blobstore::container_exists(&name));
            }
        }
        other => fail(format!("unknown mode {other:?}")),
    }
}
