"""A fault-injecting HTTP proxy for the integration tests.

It forwards every request to one upstream emulator (moto server, kinesalite, InfluxDB) and, following
a plan the test sets over HTTP, answers some requests itself with the error shapes AWS uses, or
lets part of a batch through and reports the rest as failed inside a successful response — the
faults the emulators cannot produce (throttling, 5xx, partial batch failures, Timestream
rejections).

    python fault_proxy.py --upstream http://127.0.0.1:4566
    → prints "listening <port>" on stdout once it accepts connections.

Control endpoints (handled here, never forwarded):
    PUT  /__faults   body {"rules": [rule, ...], "record": [operation, ...]} replaces the plan and
                     starts recording the bodies of requests of the listed operations afresh
    GET  /__faults   {"requests": {operation: n}, "injected": {operation: n},
                      "recorded": {operation: [body, ...]}}

A rule: {"operation": "WriteRecords", "skip": 0, "times": 1, <fault>} applies to the requests of
that operation after the first `skip` ones, `times` times (-1: always). A request meets the first
due rule that answers by itself (respond, delay), else every due timestream_reject or sns_fail
rule at once. The operation is the
X-Amz-Target suffix (JSON protocols), the Action form field (query protocols), or "METHOD /path"
(REST: S3, InfluxDB), e.g. "PUT /bucket" prefixes. Faults:
    {"respond": {"status": 503, "body": "...", "content_type": "..."}}   answer without forwarding
    {"timestream_reject": {"dimension_value": "veh-3", "reason": "...", "existing_version": 7}}
        forward WriteRecords without the records having that dimension value, then answer 419
        RejectedRecordsException listing them (as Timestream does: the others are written)
    {"sns_fail": {"message_contains": "veh-3", "code": "InternalError", "sender_fault": false}}
        forward PublishBatch without the matching entries, then add them as Failed entries to
        the upstream's 200 response
    {"delay_ms": 2000}   forward after a delay

Timestream's own limits, which moto does not enforce, are always checked: a WriteRecords call with
more than 100 records is answered with AWS's ValidationException (and counted as injected).
"""

import argparse
import http.client
import http.server
import json
import re
import sys
import threading
import time
import urllib.parse

LOCK = threading.Lock()
PLAN = []
STATS = {"requests": {}, "injected": {}, "recorded": {}}
RECORD = set()
UPSTREAM = None

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


def operation_of(method, path, headers, body):
    target = headers.get("X-Amz-Target")
    if target:
        return target.split(".")[-1]
    content_type = headers.get("Content-Type", "")
    if "x-www-form-urlencoded" in content_type and body:
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0]
    return f"{method} {path.split('?')[0]}"


def due_rules(operation):
    """The rules that apply to this request: the first that answers by itself, else every due
    partial-failure rule; each consumes one of its uses."""
    with LOCK:
        STATS["requests"][operation] = STATS["requests"].get(operation, 0) + 1
        chosen = []
        for rule in PLAN:
            wanted = rule.get("operation", "")
            if not (operation == wanted or (" " in wanted and operation.startswith(wanted))):
                continue
            if rule.get("skip", 0) > 0:
                rule["skip"] -= 1
                continue
            times = rule.get("times", 1)
            if times == 0:
                continue
            answers = "respond" in rule or "delay_ms" in rule
            if answers and chosen:
                continue
            if times > 0:
                rule["times"] = times - 1
            STATS["injected"][operation] = STATS["injected"].get(operation, 0) + 1
            chosen.append(rule)
            if answers:
                return chosen
        return chosen


def record_dimension_values(record, common):
    values = set()
    for dims in (common.get("Dimensions", []), record.get("Dimensions", [])):
        for dim in dims:
            values.add(dim.get("Value"))
    return values


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status, body, content_type="application/json", extra_headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", "fault-proxy")
        for key, value in (extra_headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def forward(self, body):
        """Sends the request upstream; returns (status, headers, body)."""
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=60)
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in HOP_HEADERS and k.lower() not in ("content-length", "host")
        }
        headers["Content-Length"] = str(len(body))
        headers["Host"] = f"{UPSTREAM.hostname}:{UPSTREAM.port}"
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            out_headers = [
                (k, v)
                for k, v in response.getheaders()
                if k.lower() not in HOP_HEADERS and k.lower() != "content-length"
            ]
            return response.status, out_headers, data
        finally:
            conn.close()

    def relay(self, status, headers, data):
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        body = self.read_body()
        if self.path.startswith("/__faults"):
            return self.control(body)
        operation = operation_of(self.command, self.path, self.headers, body)
        if operation == "WriteRecords" and len(json.loads(body).get("Records", [])) > 100:
            with LOCK:
                STATS["injected"]["WriteRecords>100"] = STATS["injected"].get("WriteRecords>100", 0) + 1
            return self.reply(
                400,
                json.dumps({
                    "__type": "com.amazonaws.timestream.v20181101#ValidationException",
                    "message": "1 validation error detected: Value at 'records' failed to satisfy "
                    "constraint: Member must have length less than or equal to 100",
                }),
                "application/x-amz-json-1.0",
            )
        if operation in RECORD:
            with LOCK:
                STATS["recorded"].setdefault(operation, []).append(body.decode("utf-8", "replace"))
        rules = due_rules(operation)
        rule = rules[0] if rules else None
        try:
            if rule is None:
                return self.relay(*self.forward(body))
            if "delay_ms" in rule:
                time.sleep(rule["delay_ms"] / 1000)
                return self.relay(*self.forward(body))
            if "respond" in rule:
                spec = rule["respond"]
                return self.reply(
                    spec.get("status", 500),
                    spec.get("body", ""),
                    spec.get("content_type", "application/x-amz-json-1.0"),
                    spec.get("headers"),
                )
            rejects = [r["timestream_reject"] for r in rules if "timestream_reject" in r]
            if rejects:
                return self.timestream_reject(body, rejects)
            failures = [r["sns_fail"] for r in rules if "sns_fail" in r]
            if failures:
                return self.sns_fail(body, failures)
            return self.relay(*self.forward(body))
        except (ConnectionError, OSError) as err:
            return self.reply(502, json.dumps({"message": f"fault proxy: upstream: {err}"}))

    def control(self, body):
        global PLAN, RECORD
        if self.command == "PUT":
            plan = json.loads(body or b"{}")
            with LOCK:
                PLAN = plan.get("rules", [])
                RECORD = set(plan.get("record", []))
                STATS["recorded"] = {}
            return self.reply(200, "{}")
        with LOCK:
            return self.reply(200, json.dumps(STATS))

    def timestream_reject(self, body, specs):
        request = json.loads(body)
        common = request.get("CommonAttributes", {})
        kept, rejected = [], []
        for index, record in enumerate(request.get("Records", [])):
            values = record_dimension_values(record, common)
            spec = next((s for s in specs if s["dimension_value"] in values), None)
            if spec is not None:
                rejected.append((index, spec))
            else:
                kept.append(record)
        if kept:
            request["Records"] = kept
            status, headers, data = self.forward(json.dumps(request).encode())
            if status != 200:
                return self.relay(status, headers, data)
        if not rejected:
            return self.reply(200, json.dumps({"RecordsIngested": {"Total": len(kept)}}))
        entries = []
        for index, spec in rejected:
            entry = {"RecordIndex": index, "Reason": spec.get("reason", "rejected by the fault proxy")}
            if "existing_version" in spec:
                entry["ExistingVersion"] = spec["existing_version"]
            entries.append(entry)
        error = {
            "__type": "com.amazonaws.timestream.v20181101#RejectedRecordsException",
            "message": "One or more records have been rejected. See RejectedRecords for details.",
            "RejectedRecords": entries,
        }
        return self.reply(
            419,
            json.dumps(error),
            "application/x-amz-json-1.0",
            {"x-amzn-ErrorType": "RejectedRecordsException"},
        )

    def sns_fail(self, body, specs):
        form = urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)
        prefix = re.compile(r"^PublishBatchRequestEntries\.member\.(\d+)\.(.*)$")
        entries, others = {}, []
        for key, value in form:
            match = prefix.match(key)
            if match:
                entries.setdefault(int(match.group(1)), []).append((match.group(2), value))
            else:
                others.append((key, value))
        failed_ids, kept = [], []
        for number in sorted(entries):
            fields = dict(entries[number])
            spec = next((s for s in specs if s["message_contains"] in fields.get("Message", "")), None)
            if spec is not None:
                failed_ids.append((fields.get("Id", str(number)), spec))
            else:
                kept.append(entries[number])
        successful_xml = ""
        if kept:
            rebuilt = list(others)
            for number, fields in enumerate(kept, start=1):
                for name, value in fields:
                    rebuilt.append((f"PublishBatchRequestEntries.member.{number}.{name}", value))
            status, headers, data = self.forward(urllib.parse.urlencode(rebuilt).encode())
            if status != 200:
                return self.relay(status, headers, data)
            match = re.search(rb"<Successful>(.*?)</Successful>", data, re.S)
            successful_xml = match.group(1).decode() if match else ""
        failed_xml = "".join(
            f"<member><Id>{entry_id}</Id><Code>{spec.get('code', 'InternalError')}</Code>"
            f"<Message>injected by the fault proxy</Message>"
            f"<SenderFault>{str(spec.get('sender_fault', False)).lower()}</SenderFault></member>"
            for entry_id, spec in failed_ids
        )
        xml = (
            '<PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
            f"<PublishBatchResult><Successful>{successful_xml}</Successful>"
            f"<Failed>{failed_xml}</Failed></PublishBatchResult>"
            "<ResponseMetadata><RequestId>fault-proxy</RequestId></ResponseMetadata>"
            "</PublishBatchResponse>"
        )
        return self.reply(200, xml, "text/xml")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


class QuietServer(http.server.ThreadingHTTPServer):
    """Clients that hang up mid-request (a test stopping a run) are not errors here."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            super().handle_error(request, client_address)


def main():
    global UPSTREAM
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    UPSTREAM = urllib.parse.urlparse(args.upstream)
    server = QuietServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
