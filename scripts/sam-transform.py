"""Print template.yaml as CloudFormation receives it after the SAM transform, as JSON.

cfn-lint on template.yaml checks the SAM resources, but it does not report a
circular dependency that SAM's generated resources create (for example a
function whose environment names an AWS::Serverless::HttpApi whose Events
integrate that function): cfn-lint on this output does (E3004). It takes the
template after scripts/expand-template.py, as CloudFormation runs the SAM
transform after AWS::LanguageExtensions.
Usage: .venv/bin/python scripts/sam-transform.py expanded.yaml > transformed.json
"""
import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the transform wants one; any will do


class NoManagedPolicies:
    """The template names no AWS managed policies, so nothing needs looking up in IAM."""

    def load(self):
        return {}


with open(sys.argv[1]) as f:
    template = yaml_parse(f.read())
if "AWS::LanguageExtensions" in str(template.get("Transform")):
    sys.exit(f"sam-transform.py: {sys.argv[1]} still has AWS::LanguageExtensions: expand it first (scripts/expand-template.py)")
# What `sam package` puts there: the transform wants an S3 location.
template.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = "s3://artifacts/bootstrap.zip"
json.dump(transform(template, {}, NoManagedPolicies()), sys.stdout, indent=1)
print()
