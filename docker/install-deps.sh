#!/bin/sh
# Install one service's Python dependencies into /opt/venv (build stages only).
#
# From /wheelhouse with no index access when it holds wheels (`make wheelhouse`:
# air-gapped builds, TLS-inspecting proxies); otherwise from the package index.
# voxstack itself is installed only as metadata and a console script: its code
# lives in /app/src (on PYTHONPATH), so a source change rebuilds one small
# layer instead of the whole environment.
set -eu
extras="$1"

if ls /wheelhouse/*.whl >/dev/null 2>&1; then
    echo "installing $extras dependencies from /wheelhouse (no index)"
    export PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheelhouse
else
    echo "no wheelhouse: installing $extras dependencies from the package index"
    case ",$extras," in
    *,llm,*)
        # llama-cpp-python has no binary wheel on the index: compile it here,
        # in the build stage only; the runtime stage copies the result.
        apt-get update
        apt-get install -y --no-install-recommends build-essential cmake
        . /usr/local/bin/llama-cpp-build.sh
        ;;
    esac
fi

# The project's metadata and dependencies, without its code.
stub=/tmp/voxstack-stub
mkdir -p "$stub/src/voxstack"
cp /build/pyproject.toml /build/README.md "$stub/"
: >"$stub/src/voxstack/__init__.py"
pip install --prefer-binary "$stub[$extras]"
rm -rf "$stub" /opt/venv/lib/python3*/site-packages/voxstack

case ",$extras," in
*,asr,*)
    # What faster-whisper pulls in and voxstack never runs: PyAV (voxstack
    # decodes audio itself; a stand-in keeps faster-whisper importable) and
    # hf-xet (models never come from a hub).
    pip uninstall --yes av hf-xet
    site=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    cp -r /build/av-stub/av "$site/av"
    ;;
esac
