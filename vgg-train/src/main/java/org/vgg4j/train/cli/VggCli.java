package org.vgg4j.train.cli;

import java.io.PrintWriter;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code vgg} command line: {@code vgg train | eval | export | features | info | bench}. Run it with
 * the examples module from the root
 * ({@code mvn -q -DskipTests package exec:java -Dexec.mainClass=org.vgg4j.train.cli.VggCli -Dexec.args="info --config D"}).
 * Every error is one line on stderr: a bad option or value names the option, the value and what was expected, exit
 * code 2; a failure while running (a file that cannot be read or written, say) names what failed, exit code 1.
 * {@code --verbose} adds the stack trace.
 */
@Command(name = "vgg", mixinStandardHelpOptions = true, versionProvider = VggCli.Version.class,
        description = "Train, evaluate and describe the VGG networks of Simonyan & Zisserman (ICLR 2015).",
        subcommands = {TrainCommand.class, EvalCommand.class, InfoCommand.class, BenchCommand.class, ExportCommand.class,
                FeaturesCommand.class,
                CommandLine.HelpCommand.class})
public final class VggCli implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @CommandLine.Option(names = "--verbose", scope = CommandLine.ScopeType.INHERIT,
            description = "print the stack trace of an error (errors are one line without it)")
    boolean verbose;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "name a subcommand: train, eval, export, features, info or bench");
    }

    /** Parses and runs {@code args}; returns the exit code (0 ok, 1 failure, 2 bad usage). */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        CommandLine cl = new CommandLine(new VggCli());
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setOverwrittenOptionsAllowed(true); // the last of a repeated option wins (examples prepend defaults)
        cl.setOut(out);
        cl.setErr(err);
        boolean verbose = java.util.Arrays.asList(args).contains("--verbose"); // known even when parsing fails
        cl.setParameterExceptionHandler((e, a) -> {
            CommandLine cmd = e.getCommandLine();
            String hint = e instanceof CommandLine.UnmatchedArgumentException u && !u.getSuggestions().isEmpty()
                    ? " (did you mean " + String.join(" or ", u.getSuggestions()) + "?)"
                    : " (" + cmd.getCommandSpec().qualifiedName() + " --help lists the options)";
            cmd.getErr().println("error: " + e.getMessage() + hint);
            if (verbose) {
                e.printStackTrace(cmd.getErr());
            }
            return 2;
        });
        cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
            boolean usage = e instanceof IllegalArgumentException; // a bad value found after parsing
            cmd.getErr().println("error: " + CliErrors.describe(e) + (usage || verbose ? "" : " (--verbose for the stack trace)"));
            if (verbose) {
                e.printStackTrace(cmd.getErr());
            }
            return usage ? 2 : 1;
        });
        return cl.execute(args);
    }

    /**
     * The project version as the pom has it (e.g. 0.1.0-SNAPSHOT), from {@code version.properties}, which Maven
     * fills in when it copies the resources.
     */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() throws java.io.IOException {
            return new String[] {"VGG4J " + version()};
        }
    }

    /** This build's version, e.g. "0.1.0-SNAPSHOT". */
    public static String version() throws java.io.IOException {
        java.util.Properties p = new java.util.Properties();
        try (java.io.InputStream in = VggCli.class.getResourceAsStream("version.properties")) {
            if (in == null) {
                throw new java.io.IOException("version.properties is missing from the class path next to "
                        + VggCli.class.getName() + "; expected Maven to copy it from src/main/resources-filtered");
            }
            p.load(in);
        }
        String v = p.getProperty("version");
        if (v == null || v.contains("${")) {
            throw new java.io.IOException("version.properties holds '" + v + "'; expected a version filled in by Maven");
        }
        return v;
    }

    public static void main(String[] args) {
        int code = run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true));
        System.exit(code);
    }
}
