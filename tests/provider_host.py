"""The engine's side of a dynamic provider, for the tests: `python -m pulumi.dynamic` started
from the project root as the engine starts it, then driven over gRPC with the serialized
provider in the properties. Configure is answered with acceptSecrets=False, so properties
travel as plain values (the engine strips secrets); numbers travel as protobuf doubles."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from tests.conftest import ROOT

PROVIDER_KEY = "__provider"


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def _dict(struct) -> dict[str, Any]:
    return json_format.MessageToDict(struct)


class ProviderHost:
    def __init__(self, provider, urn: str):
        self.blob = serialize_provider(provider)
        self.urn = urn

    def __enter__(self) -> "ProviderHost":
        env = {**os.environ, "PULUMI_PROJECT": "supabase-platform"}
        self.proc = subprocess.Popen([sys.executable, "-m", "pulumi.dynamic"], cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        port = self.proc.stdout.readline().decode().strip()
        assert port.isdigit(), self.proc.stderr.read().decode()[-2000:]
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        return self

    def __exit__(self, *exc) -> None:
        self.channel.close()
        self.proc.kill()
        self.proc.wait()

    def _props(self, props: dict[str, Any]) -> struct_pb2.Struct:
        return _struct({**props, PROVIDER_KEY: self.blob})

    def configure(self) -> provider_pb2.ConfigureResponse:
        return self.stub.Configure(provider_pb2.ConfigureRequest(args=_struct({}), acceptSecrets=True,
                                                                 acceptResources=True), timeout=60)

    def check(self, olds: dict, news: dict) -> tuple[dict, list]:
        response = self.stub.Check(provider_pb2.CheckRequest(urn=self.urn, olds=self._props(olds),
                                                              news=self._props(news)), timeout=300)
        return _dict(response.inputs), [(f.property, f.reason) for f in response.failures]

    def diff(self, id_: str, olds: dict, news: dict) -> provider_pb2.DiffResponse:
        return self.stub.Diff(provider_pb2.DiffRequest(id=id_, urn=self.urn, olds=self._props(olds),
                                                       news=self._props(news)), timeout=300)

    def create(self, props: dict) -> tuple[str, dict]:
        response = self.stub.Create(provider_pb2.CreateRequest(urn=self.urn, properties=self._props(props)),
                                    timeout=300)
        return response.id, _dict(response.properties)

    def read(self, id_: str, props: dict) -> dict:
        response = self.stub.Read(provider_pb2.ReadRequest(id=id_, urn=self.urn, properties=self._props(props)),
                                  timeout=300)
        return _dict(response.properties)

    def update(self, id_: str, olds: dict, news: dict) -> dict:
        response = self.stub.Update(provider_pb2.UpdateRequest(id=id_, urn=self.urn, olds=self._props(olds),
                                                               news=self._props(news)), timeout=300)
        return _dict(response.properties)

    def delete(self, id_: str, props: dict) -> None:
        self.stub.Delete(provider_pb2.DeleteRequest(id=id_, urn=self.urn, properties=self._props(props)), timeout=300)


def without_provider(props: dict) -> dict:
    return {k: v for k, v in props.items() if k != PROVIDER_KEY}
