"""Reading what a run's batch transform jobs wrote, and the sizes of the images they saw (S3, concurrently)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from truthflow.automated_labeling.predictions import MAX_OUTPUT_BYTES, match_outputs
from truthflow.aws.s3 import iter_objects, parse_s3_uri, read_bytes, read_prefix_bytes, s3_uri
from truthflow.image_headers import HEADER_BYTES, ImageHeaderError, NeedMoreBytesError, image_size

# Outputs and image headers are small and many: read them concurrently (boto3 clients are thread-safe).
READ_THREADS = 32


def read_transform_outputs(
    client: Any, output_prefix_uris: Sequence[str], relative_inputs: Iterable[str]
) -> tuple[dict[str, bytes], dict[str, str]]:
    """``({relative input key: output bytes}, {relative input key: problem})`` over the jobs' output prefixes.
    An output larger than a prediction can be is not downloaded, and named as a problem."""
    inputs = list(relative_inputs)
    found: dict[str, tuple[str, int]] = {}
    for prefix_uri in output_prefix_uris:
        bucket, prefix = parse_s3_uri(prefix_uri)
        listing = {
            key.removeprefix(prefix): (s3_uri(bucket, key), size) for key, size in iter_objects(client, bucket, prefix)
        }
        for relative, output in match_outputs(inputs, listing).items():
            found[relative] = listing[output]
    problems = {
        relative: f"transform output is {size:,} bytes, more than a prediction can be"
        for relative, (_, size) in found.items()
        if size > MAX_OUTPUT_BYTES
    }
    wanted = [(relative, uri) for relative, (uri, size) in found.items() if relative not in problems]
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        bodies = list(pool.map(lambda item: read_bytes(client, item[1]), wanted))
    return {relative: body for (relative, _), body in zip(wanted, bodies, strict=True)}, problems


def read_image_sizes(client: Any, uris: Iterable[str]) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    """``({uri: (width, height)}, {uri: problem})`` from each image's first bytes (the whole file if needed)."""

    def size_of(uri: str) -> tuple[int, int] | str:
        try:
            try:
                return image_size(read_prefix_bytes(client, uri, HEADER_BYTES))
            except NeedMoreBytesError:
                return image_size(read_bytes(client, uri))
        except ImageHeaderError as error:
            return f"{uri}: {error}"

    unique = list(dict.fromkeys(uris))
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        results = list(pool.map(size_of, unique))
    sizes: dict[str, tuple[int, int]] = {}
    problems: dict[str, str] = {}
    for uri, result in zip(unique, results, strict=True):
        if isinstance(result, tuple):
            sizes[uri] = result
        else:
            problems[uri] = result
    return sizes, problems
