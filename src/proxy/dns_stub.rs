//! The DNS stub each sandbox resolves with (127.0.0.53:53 inside its namespace, served by
//! the host). Every A query for a valid host name is answered with the name's synthetic
//! address from the sandbox's pool (`names`), so the proxy later knows which name each
//! connection is for. Messages are parsed and written with `hickory-proto`:
//! no hand-written DNS.
//!
//! Choices where DNS leaves room:
//! * The answer does not depend on `access_control`: a name the policy refuses still gets
//!   its address, so the refusal happens on the connection, where it is visible (a `403`
//!   naming the rule on HTTP, an entry in the egress log) instead of an unexplained "could
//!   not resolve host". Nor does the stub ask whether the name exists: the proxy resolves
//!   it when a connection comes, and an unknown name then fails that connection (`502` on
//!   HTTP, a reset otherwise).
//! * AAAA and every other type of a valid name: NOERROR with no records, so clients fall
//!   back to IPv4, the only way out of the sandbox.
//! * PTR queries and names that are not valid host names (the root, or a label outside
//!   letters, digits, `-` and `_`): NXDOMAIN, which makes resolvers stop at once rather than
//!   retry. (Labels over 63 bytes and names over 255 cannot even be parsed: those datagrams
//!   are dropped.)
//! * `localhost` and `*.localhost`: A 127.0.0.1, never a pool address.
//! * Only the first question of a message is answered (every resolver sends one); the
//!   reply echoes that question alone.
//! * Classes other than IN: REFUSED.
//! * Responses and unparseable datagrams: no reply at all, so two stubs can never bounce
//!   replies at each other. Opcodes other than QUERY: NOTIMP. A query without a question:
//!   FORMERR.
//! * EDNS is ignored: the reply has no OPT record, and answers are far below 512 bytes.

use std::net::Ipv4Addr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};

use super::names::NamePool;

/// Seconds a sandbox may cache an answer. Short, so a recycled pool address (see `names`)
/// is long out of every cache before it is handed to another name.
pub const ANSWER_TTL: u32 = 60;

/// The reply to one DNS query datagram, or `None` when it is not a parseable query (it is
/// then dropped).
pub fn answer(query: &[u8], pool: &mut NamePool) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    if request.message_type() != MessageType::Query {
        return None;
    }
    let mut reply = reply_to(&request);
    if request.op_code() != OpCode::Query {
        reply.set_response_code(ResponseCode::NotImp);
        return reply.to_vec().ok();
    }
    let Some(question) = request.queries().first() else {
        reply.set_response_code(ResponseCode::FormErr);
        return reply.to_vec().ok();
    };
    reply.add_query(question.clone());
    match resolve(question, pool) {
        Ok(Some(addr)) => {
            reply.add_answer(a_record(question, addr));
        }
        Ok(None) => {}
        Err(code) => {
            reply.set_response_code(code);
        }
    }
    reply.to_vec().ok()
}

/// A reply skeleton: same id and opcode, RD copied, AA and RA set, NOERROR, no question.
fn reply_to(request: &Message) -> Message {
    let mut reply = Message::new();
    reply
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true)
        .set_response_code(ResponseCode::NoError);
    reply
}

/// What `question` resolves to: `Ok(Some(addr))` an A record, `Ok(None)` NOERROR without
/// records, `Err(code)` an error reply.
fn resolve(question: &Query, pool: &mut NamePool) -> Result<Option<Ipv4Addr>, ResponseCode> {
    if question.query_class() != DNSClass::IN {
        return Err(ResponseCode::Refused);
    }
    let kind = question.query_type();
    let name = normalised(question);
    if name == "localhost" || name.ends_with(".localhost") {
        return Ok((kind == RecordType::A).then_some(Ipv4Addr::LOCALHOST));
    }
    if kind == RecordType::PTR || !valid_host_name(&name) {
        return Err(ResponseCode::NXDomain);
    }
    Ok((kind == RecordType::A).then(|| pool.address_for(&name)))
}

/// The question's name as policies spell names: lowercase, without the trailing dot.
fn normalised(question: &Query) -> String {
    let name = question.name().to_ascii();
    name.strip_suffix('.').unwrap_or(&name).to_ascii_lowercase()
}

/// An A record for the question's name (its case as asked, which some resolvers check).
fn a_record(question: &Query, addr: Ipv4Addr) -> Record {
    Record::from_rdata(question.name().clone(), ANSWER_TTL, RData::A(A(addr)))
}

/// A host name the proxy could dial. (`to_ascii` escapes any byte a host name cannot hold,
/// so escaped names fail here too.)
fn valid_host_name(name: &str) -> bool {
    crate::api::host::is_valid_name(name)
}

#[cfg(test)]
mod tests {

    use hickory_proto::rr::Name;

    use super::*;

    fn query_message(name: &str, kind: RecordType) -> Message {
        query_for(Name::from_ascii(name).unwrap(), kind)
    }

    fn query_for(name: Name, kind: RecordType) -> Message {
        let mut msg = Message::new();
        msg.set_id(4242)
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(true)
            .add_query(Query::query(name, kind));
        msg
    }

    fn query(name: &str, kind: RecordType) -> Vec<u8> {
        query_message(name, kind).to_vec().unwrap()
    }

    fn ask(pool: &mut NamePool, name: &str, kind: RecordType) -> Message {
        let reply = answer(&query(name, kind), pool).unwrap();
        Message::from_vec(&reply).unwrap()
    }

    fn only_a(reply: &Message) -> Ipv4Addr {
        assert_eq!(reply.answers().len(), 1, "{reply:?}");
        match reply.answers()[0].data() {
            RData::A(A(addr)) => *addr,
            other => panic!("not an A record: {other:?}"),
        }
    }

    #[test]
    fn an_a_query_gets_a_pool_address_that_maps_back_to_the_name() {
        let mut pool = NamePool::new();
        let reply = ask(&mut pool, "Pypi.ORG.", RecordType::A);
        assert_eq!(reply.id(), 4242);
        assert_eq!(reply.message_type(), MessageType::Response);
        assert_eq!(reply.response_code(), ResponseCode::NoError);
        assert!(reply.recursion_available());
        assert!(reply.authoritative());
        assert!(reply.recursion_desired());
        assert_eq!(reply.queries().len(), 1);
        assert_eq!(reply.queries()[0].name().to_ascii(), "Pypi.ORG.");
        assert_eq!(reply.queries()[0].query_type(), RecordType::A);
        let addr = only_a(&reply);
        assert_eq!(reply.answers()[0].ttl(), ANSWER_TTL);
        assert_eq!(reply.answers()[0].name().to_ascii(), "Pypi.ORG.");
        assert!(NamePool::in_pool(addr.into()));
        // The connection the sandbox then opens to `addr` is judged as pypi.org.
        assert_eq!(pool.name_of(addr), Some("pypi.org"));
        // And the name keeps its address.
        assert_eq!(only_a(&ask(&mut pool, "pypi.org", RecordType::A)), addr);
    }

    #[test]
    fn aaaa_and_other_types_of_a_reachable_name_are_empty() {
        let mut pool = NamePool::new();
        for kind in [RecordType::AAAA, RecordType::MX, RecordType::TXT] {
            let reply = ask(&mut pool, "pypi.org", kind);
            assert_eq!(reply.response_code(), ResponseCode::NoError, "{kind}");
            assert!(reply.answers().is_empty(), "{kind}");
            assert_eq!(reply.queries()[0].query_type(), kind);
        }
        assert_eq!(pool.address_for("first.test"), Ipv4Addr::new(198, 18, 1, 0));
    }

    #[test]
    fn ptr_and_invalid_names_get_nxdomain() {
        let mut pool = NamePool::new();
        for (name, kind) in [
            ("1.0.0.127.in-addr.arpa", RecordType::PTR),
            (".", RecordType::A),
        ] {
            let reply = ask(&mut pool, name, kind);
            assert_eq!(reply.response_code(), ResponseCode::NXDomain, "{name}");
            assert!(reply.answers().is_empty(), "{name}");
            assert_eq!(reply.id(), 4242);
        }
        // A label with a byte no host name has, sent raw on the wire.
        let odd = Name::from_labels([&b"bad name"[..], &b"test"[..]]).unwrap();
        let reply = answer(&query_for(odd, RecordType::A).to_vec().unwrap(), &mut pool);
        let reply = Message::from_vec(&reply.unwrap()).unwrap();
        assert_eq!(reply.response_code(), ResponseCode::NXDomain);
        assert_eq!(pool.address_for("first.test"), Ipv4Addr::new(198, 18, 1, 0));
    }

    #[test]
    fn localhost_is_loopback_and_takes_no_pool_address() {
        let mut pool = NamePool::new();
        for name in ["localhost", "LocalHost.", "web.localhost"] {
            let reply = ask(&mut pool, name, RecordType::A);
            assert_eq!(only_a(&reply), Ipv4Addr::LOCALHOST, "{name}");
        }
        assert!(
            ask(&mut pool, "localhost", RecordType::AAAA)
                .answers()
                .is_empty()
        );
        assert_eq!(pool.address_for("first.test"), Ipv4Addr::new(198, 18, 1, 0));
    }

    #[test]
    fn only_the_first_question_is_answered() {
        let mut pool = NamePool::new();
        let mut msg = query_message("one.test", RecordType::A);
        msg.add_query(Query::query(
            Name::from_ascii("two.test").unwrap(),
            RecordType::A,
        ));
        let reply = answer(&msg.to_vec().unwrap(), &mut pool).unwrap();
        let reply = Message::from_vec(&reply).unwrap();
        assert_eq!(reply.queries().len(), 1);
        assert_eq!(pool.name_of(only_a(&reply)), Some("one.test"));
    }

    #[test]
    fn other_opcodes_classes_and_empty_queries_get_errors() {
        let mut pool = NamePool::new();
        let mut update = query_message("a.test", RecordType::A);
        update.set_op_code(OpCode::Update);
        let reply = answer(&update.to_vec().unwrap(), &mut pool).unwrap();
        let reply = Message::from_vec(&reply).unwrap();
        assert_eq!(reply.response_code(), ResponseCode::NotImp);
        assert!(reply.answers().is_empty());

        let mut chaos = Message::new();
        let mut question = Query::query(Name::from_ascii("version.bind").unwrap(), RecordType::TXT);
        question.set_query_class(DNSClass::CH);
        chaos.set_id(7).add_query(question);
        let reply = answer(&chaos.to_vec().unwrap(), &mut pool).unwrap();
        let reply = Message::from_vec(&reply).unwrap();
        assert_eq!(reply.response_code(), ResponseCode::Refused);
        assert_eq!(reply.id(), 7);

        let mut empty = Message::new();
        empty.set_id(8);
        let reply = answer(&empty.to_vec().unwrap(), &mut pool).unwrap();
        let reply = Message::from_vec(&reply).unwrap();
        assert_eq!(reply.response_code(), ResponseCode::FormErr);
    }

    #[test]
    fn garbage_and_responses_get_no_reply() {
        let mut pool = NamePool::new();
        assert_eq!(answer(b"", &mut pool), None);
        assert_eq!(answer(b"\x01\x02garbage", &mut pool), None);
        let noise: Vec<u8> = (0..200u32).map(|i| (i * 37 + 11) as u8).collect();
        assert_eq!(answer(&noise, &mut pool), None);
        let reply = answer(&query("a.test", RecordType::A), &mut pool).unwrap();
        assert_eq!(answer(&reply, &mut pool), None);
    }

    #[test]
    fn an_edns_query_is_answered_without_opt() {
        let mut pool = NamePool::new();
        let mut msg = query_message("edns.test", RecordType::A);
        msg.set_edns(hickory_proto::op::Edns::new());
        let reply = answer(&msg.to_vec().unwrap(), &mut pool).unwrap();
        let reply = Message::from_vec(&reply).unwrap();
        assert!(reply.extensions().is_none());
        assert_eq!(pool.name_of(only_a(&reply)), Some("edns.test"));
    }
}
