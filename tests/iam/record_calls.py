"""A recording HTTP proxy in front of an AWS API server (DynamoDB Local, moto).

    python3 record_calls.py PORT UPSTREAM_URL LOG_FILE

Forwards every request on 127.0.0.1:PORT to UPSTREAM_URL unchanged and appends one JSON line
per AWS action to LOG_FILE: who called (the access key id of the SigV4 credential; the tests
give each function its own), the service, the IAM action and resource, and the condition keys
IAM would see (dynamodb:LeadingKeys, dynamodb:Attributes, dynamodb:Select). A batch or a
transaction becomes one line per table or per part, as IAM authorizes them. No item, value,
parameter value or mail body is written: only names and partition keys.

check_calls.py evaluates the lines against the template's IAM policies.
"""

import http.client
import json
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCOUNT = "123456789012"
REGION = "us-east-1"
LOCK = threading.Lock()


def table_arn(table, index=None):
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def names(expression, attribute_names):
    """Attribute names of a projection expression (top-level names, #aliases resolved)."""
    out = []
    for part in (expression or "").split(","):
        part = part.strip()
        if not part:
            continue
        top = re.split(r"[.\[]", part, maxsplit=1)[0]
        out.append((attribute_names or {}).get(top, top))
    return out


def leading_key(key):
    value = (key or {}).get("pk", {})
    return value.get("S") if isinstance(value, dict) else None


def query_leading_keys(body):
    expression = body.get("KeyConditionExpression", "")
    aliases = body.get("ExpressionAttributeNames") or {}
    values = body.get("ExpressionAttributeValues") or {}
    keys = []
    for name, placeholder in re.findall(r"(#?\w+)\s*=\s*(:\w+)", expression):
        if aliases.get(name, name) in ("pk", "gsi1pk"):
            value = values.get(placeholder, {})
            if "S" in value:
                keys.append(value["S"])
    return keys


def dynamodb_calls(operation, body):
    """(action, resource, conditions) for each part of a DynamoDB request."""
    calls = []

    def one(action, table, index=None, keys=(), attributes=(), select=None):
        conditions = {"dynamodb:LeadingKeys": [k for k in keys if k is not None]}
        if attributes:
            conditions["dynamodb:Attributes"] = list(attributes)
        if select:
            conditions["dynamodb:Select"] = select
        calls.append((f"dynamodb:{action}", table_arn(table, index), conditions))

    table = body.get("TableName")
    if operation in ("GetItem", "DeleteItem", "UpdateItem"):
        attributes = names(body.get("ProjectionExpression"), body.get("ExpressionAttributeNames"))
        one(operation, table, keys=[leading_key(body.get("Key"))], attributes=attributes)
    elif operation == "PutItem":
        one(operation, table, keys=[leading_key(body.get("Item"))])
    elif operation in ("Query", "Scan"):
        attributes = names(body.get("ProjectionExpression"), body.get("ExpressionAttributeNames"))
        keys = query_leading_keys(body) if operation == "Query" else []
        one(operation, table, body.get("IndexName"), keys, attributes, body.get("Select"))
    elif operation == "BatchGetItem":
        for name, request in (body.get("RequestItems") or {}).items():
            attributes = names(request.get("ProjectionExpression"), request.get("ExpressionAttributeNames"))
            keys = [leading_key(k) for k in request.get("Keys", [])]
            one(operation, name, keys=keys, attributes=attributes)
    elif operation == "BatchWriteItem":
        for name, requests in (body.get("RequestItems") or {}).items():
            keys = []
            for request in requests:
                if "PutRequest" in request:
                    keys.append(leading_key(request["PutRequest"].get("Item")))
                if "DeleteRequest" in request:
                    keys.append(leading_key(request["DeleteRequest"].get("Key")))
            one(operation, name, keys=keys)
    elif operation == "TransactWriteItems":
        parts = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                 "ConditionCheck": "ConditionCheckItem"}
        for item in body.get("TransactItems", []):
            for part, action in parts.items():
                if part in item:
                    request = item[part]
                    key = request.get("Item") if part == "Put" else request.get("Key")
                    one(action, request.get("TableName"), keys=[leading_key(key)])
    elif operation == "TransactGetItems":
        for item in body.get("TransactItems", []):
            request = item.get("Get", {})
            one("GetItem", request.get("TableName"), keys=[leading_key(request.get("Key"))])
    else:
        one(operation, table or "*")
    return calls


def describe(method, path, headers, raw):
    authorization = headers.get("Authorization", "")
    match = re.search(r"Credential=([^/]+)/\d+/([^/]+)/([^/]+)/", authorization)
    if not match:
        return []
    key, _region, service = match.groups()
    target = headers.get("X-Amz-Target", "")
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if service == "dynamodb" and target:
        calls = dynamodb_calls(target.split(".", 1)[1], body)
    elif service == "ssm" and target:
        operation = target.split(".", 1)[1]
        name = body.get("Name", "")
        resource = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter" + (name if name.startswith("/") else "/" + name)
        calls = [(f"ssm:{operation}", resource, {})]
    elif service == "events" and target.endswith(".PutEvents"):
        calls = []
        for entry in body.get("Entries", []):
            bus = entry.get("EventBusName") or "default"
            resource = bus if bus.startswith("arn:") else f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{bus}"
            calls.append(("events:PutEvents", resource, {}))
    elif service == "ses" and method == "POST" and path.startswith("/v2/email/outbound-emails"):
        sender = body.get("FromEmailAddress", "")
        address = re.search(r"<([^>]+)>", sender)
        address = address.group(1) if address else sender
        calls = [("ses:SendEmail", f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{address}", {})]
    elif service == "lambda" and method == "POST" and re.fullmatch(
            r"/2015-03-31/functions/[^/]+/invocations", urllib.parse.urlsplit(path).path):
        parts = urllib.parse.urlsplit(path)
        name = urllib.parse.unquote(parts.path.split("/")[3])
        if not name.startswith("arn:"):
            name = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        qualifier = urllib.parse.parse_qs(parts.query).get("Qualifier")
        if qualifier and name.count(":") == 6:
            name = f"{name}:{qualifier[0]}"
        calls = [("lambda:InvokeFunction", name, {})]
    elif target:
        calls = [(f"{service}:{target.split('.', 1)[-1]}", "*", {})]
    else:
        calls = [(f"{service}:{method} {urllib.parse.urlsplit(path).path}", "*", {})]
    return [{"key": key, "service": service, "action": a, "resource": r, "conditions": c}
            for a, r, c in calls]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None
    log = None

    def log_message(self, *args):
        pass

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            lines = describe(self.command, self.path, self.headers, raw)
        except Exception as e:  # a request this proxy cannot read is recorded as such
            lines = [{"key": "?", "service": "?", "action": f"unreadable: {e}", "resource": "*", "conditions": {}}]
        if lines:
            with LOCK, open(self.log, "a", encoding="utf-8") as f:
                for line in lines:
                    f.write(json.dumps(line) + "\n")
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        try:
            connection.request(self.command, self.path, body=raw, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except OSError:
            self.send_error(502)
            return
        finally:
            connection.close()
        self.send_response_only(response.status, response.reason)
        for k, v in response.getheaders():
            if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = forward


def main(port, upstream, log):
    Handler.upstream = urllib.parse.urlsplit(upstream)
    Handler.log = log
    server = ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:4])
