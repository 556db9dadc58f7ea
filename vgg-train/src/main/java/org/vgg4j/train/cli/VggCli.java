package org.vgg4j.train.cli;

import java.io.PrintWriter;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code vgg} command line: {@code vgg train | eval | info | bench}. Run it with
 * the examples module from the root
 * ({@code mvn -q -DskipTests package exec:java -Dexec.mainClass=org.vgg4j.train.cli.VggCli -Dexec.args="info --config D"}).
 * Bad options are reported by picocli naming the option and the accepted values, with exit code 2.
 */
@Command(name = "vgg", mixinStandardHelpOptions = true, version = "VGG4J 0.1.0",
        description = "Train, evaluate and describe the VGG networks of Simonyan & Zisserman (ICLR 2015).",
        subcommands = {TrainCommand.class, EvalCommand.class, InfoCommand.class, BenchCommand.class, ExportCommand.class,
                CommandLine.HelpCommand.class})
public final class VggCli implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "name a subcommand: train, eval, info or bench");
    }

    /** Parses and runs {@code args}; returns the exit code (0 ok, 1 failure, 2 bad usage). */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        CommandLine cl = new CommandLine(new VggCli());
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setOverwrittenOptionsAllowed(true); // the last of a repeated option wins (examples prepend defaults)
        cl.setOut(out);
        cl.setErr(err);
        cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
            if (e instanceof IllegalArgumentException) { // a bad value found after parsing: a usage error
                cmd.getErr().println("error: " + e.getMessage());
                return 2;
            }
            cmd.getErr().println("error: " + e);
            e.printStackTrace(cmd.getErr());
            return 1;
        });
        return cl.execute(args);
    }

    public static void main(String[] args) {
        int code = run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true));
        System.exit(code);
    }
}
