#!/usr/bin/env bash
# The consumer-project check of README's "Add to your project": installs VGG4J's artifacts (the BOM, the parent and
# every module, with their sources and javadoc jars) into the local Maven repository, as a user does, then builds
# and tests examples/consumer, a project that is no part of the reactor and depends only on those installed
# artifacts: VGG-16 in one line, a narrow VGG trained for a few steps on the cpu backend.
#
# The install goes into ~/.m2 (what README tells a user to do; CI runs on a fresh machine, where that is fine).
# Arguments are passed to both Maven calls, e.g. to keep ~/.m2 untouched:
#   cp -r ~/.m2/repository /tmp/m2 && scripts/consumer-check.sh -o -Dmaven.repo.local=/tmp/m2
set -euo pipefail
cd "$(dirname "$0")/.."

echo "consumer check: installing VGG4J into the local repository"
mvn -B -ntp -q install -DskipTests "$@"

echo "consumer check: building and testing examples/consumer against the installed artifacts"
mvn -B -ntp -q -f examples/consumer/pom.xml test "$@"
echo "consumer check: passed"
