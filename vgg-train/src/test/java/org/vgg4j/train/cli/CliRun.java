package org.vgg4j.train.cli;

import java.io.PrintWriter;
import java.io.StringWriter;

/** One {@code vgg} command run in this JVM through {@link VggCli#run}: its exit code, stdout and stderr. */
record CliRun(int code, String out, String err) {

    static CliRun vgg(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = VggCli.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new CliRun(code, out.toString(), err.toString());
    }
}
