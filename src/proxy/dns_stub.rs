//! The DNS stub each sandbox resolves with: every A query for a name the sandbox's policy
//! could allow is answered with the name's synthetic address from its pool (`names`), so
//! the proxy later knows which name a connection is for. Messages are parsed and written
//! with `hickory-proto`.
//!
//! Choices: AAAA and other types of a reachable name answer NOERROR with no records (so
//! clients fall back to IPv4, the only way out); names the policy can never allow, PTR
//! queries and invalid names answer NXDOMAIN; `localhost` answers 127.0.0.1; only the
//! first question of a message is answered; responses, non-QUERY opcodes and unparseable
//! datagrams get no answer at all.

use std::net::Ipv4Addr;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};

use super::names::NamePool;

/// Seconds a sandbox may cache an answer.
pub const ANSWER_TTL: u32 = 60;

/// The reply to one query datagram, or `None` when there is nothing to answer.
pub fn answer(
    query: &[u8],
    pool: &mut NamePool,
    reachable: impl Fn(&str) -> bool,
) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    if request.message_type() != MessageType::Query || request.op_code() != OpCode::Query {
        return None;
    }
    let question = request.queries().first()?.clone();
    let mut reply = Message::new();
    reply
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true)
        .add_query(question.clone());
    let name = question
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let kind = question.query_type();
    let localhost = name == "localhost" || name.ends_with(".localhost");
    if localhost {
        if kind == RecordType::A {
            reply.add_answer(a_record(&question, Ipv4Addr::LOCALHOST));
        }
    } else if kind == RecordType::PTR || !valid_name(&name) || !reachable(&name) {
        reply.set_response_code(ResponseCode::NXDomain);
    } else if kind == RecordType::A {
        let addr = pool.address_for(&name);
        reply.add_answer(a_record(&question, addr));
    }
    reply.to_vec().ok()
}

fn a_record(question: &hickory_proto::op::Query, addr: Ipv4Addr) -> Record {
    Record::from_rdata(question.name().clone(), ANSWER_TTL, RData::A(A(addr)))
}

/// A host name the proxy could dial: labels of letters, digits, `-` and `_`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    use super::*;

    fn query(name: &str, kind: RecordType) -> Vec<u8> {
        let mut msg = Message::new();
        msg.set_id(4242)
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(true)
            .add_query(Query::query(Name::from_str(name).unwrap(), kind));
        msg.to_vec().unwrap()
    }

    fn ask(pool: &mut NamePool, name: &str, kind: RecordType) -> Message {
        let reply = answer(&query(name, kind), pool, |n| !n.ends_with("blocked.test")).unwrap();
        Message::from_vec(&reply).unwrap()
    }

    #[test]
    fn reachable_names_get_pool_addresses_that_map_back() {
        let mut pool = NamePool::new();
        let reply = ask(&mut pool, "Pypi.ORG.", RecordType::A);
        assert_eq!(reply.id(), 4242);
        assert_eq!(reply.response_code(), ResponseCode::NoError);
        assert_eq!(reply.queries().len(), 1);
        let RData::A(A(addr)) = reply.answers()[0].data() else {
            panic!("{reply:?}")
        };
        assert_eq!(reply.answers()[0].ttl(), ANSWER_TTL);
        assert_eq!(pool.name_of(*addr), Some("pypi.org"));
        let aaaa = ask(&mut pool, "pypi.org", RecordType::AAAA);
        assert_eq!(aaaa.response_code(), ResponseCode::NoError);
        assert!(aaaa.answers().is_empty());
    }

    #[test]
    fn unreachable_names_and_ptr_get_nxdomain() {
        let mut pool = NamePool::new();
        for (name, kind) in [
            ("ads.blocked.test", RecordType::A),
            ("1.0.0.127.in-addr.arpa", RecordType::PTR),
        ] {
            let reply = ask(&mut pool, name, kind);
            assert_eq!(reply.response_code(), ResponseCode::NXDomain, "{name}");
            assert!(reply.answers().is_empty());
        }
        let reply = ask(&mut pool, "localhost", RecordType::A);
        let RData::A(A(addr)) = reply.answers()[0].data() else {
            panic!("{reply:?}")
        };
        assert_eq!(*addr, Ipv4Addr::LOCALHOST);
    }

    #[test]
    fn garbage_and_responses_get_no_answer() {
        let mut pool = NamePool::new();
        assert_eq!(answer(b"\x01\x02garbage", &mut pool, |_| true), None);
        let reply = answer(&query("a.test", RecordType::A), &mut pool, |_| true).unwrap();
        assert_eq!(answer(&reply, &mut pool, |_| true), None);
    }
}
