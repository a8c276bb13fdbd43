"""What SAM really does with template.yaml, for tests/tests/openapi.rs.

Runs with the Python that has SAM CLI installed (scripts/test puts .tools/venv first on PATH):
- translate TEMPLATE PARAMETERS_JSON: the CloudFormation template SAM deploys, as JSON, from
  samtranslator, the library `sam deploy` itself uses.
- overrides WORD...: the parameters SAM CLI's own --parameter-overrides parser makes of these
  command-line words, as JSON.
- check TEMPLATE NAME VALUE: whether CloudFormation would accept VALUE for parameter NAME
  (AllowedPattern as a whole-value match, AllowedValues, MinValue/MaxValue, MinLength/MaxLength);
  prints "ok" or the reason.
"""

import json
import os
import re
import sys


def load(path):
    from samtranslator.yaml_helper import yaml_parse

    with open(path, encoding="utf-8") as f:
        return yaml_parse(f.read())


def translate(path, parameters):
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.public.translator import ManagedPolicyLoader
    from samtranslator.translator.transform import transform

    template = load(path)
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/key"

    class NoIam(ManagedPolicyLoader):
        def __init__(self):
            pass

        def load(self):
            return {}

    try:
        return transform(template, parameters, NoIam())
    except InvalidDocumentException as e:
        raise SystemExit("; ".join(str(c) for c in e.causes)) from e


def overrides(words):
    from samcli.cli.types import CfnParameterOverridesType

    return CfnParameterOverridesType().convert(tuple(words), None, None)


def check(path, name, value):
    spec = load(path)["Parameters"][name]
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        return "not one of AllowedValues"
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        return "does not match AllowedPattern"
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        return "shorter than MinLength"
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        return "longer than MaxLength"
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return "not a number"
        if "MinValue" in spec and number < float(spec["MinValue"]):
            return "below MinValue"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            return "above MaxValue"
    return "ok"


def main(argv):
    command, args = argv[1], argv[2:]
    if command == "translate":
        print(json.dumps(translate(args[0], json.loads(args[1]))))
    elif command == "overrides":
        print(json.dumps(overrides(args)))
    elif command == "check":
        print(check(args[0], args[1], args[2]))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv)
