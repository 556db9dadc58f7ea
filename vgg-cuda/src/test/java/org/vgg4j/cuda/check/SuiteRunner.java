package org.vgg4j.cuda.check;

import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectPackage;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.platform.engine.DiscoverySelector;
import org.junit.platform.engine.Filter;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.support.descriptor.ClassSource;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.TagFilter;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.TestPlan;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;

/**
 * Runs vgg-cuda's JUnit tests without Maven (the GPU bundle has no Maven): one line per test, then
 * {@code N passed, N failed, N skipped}; exit status 0 only when something passed and nothing failed.
 * <pre>
 *   java -cp BUNDLE_CP org.vgg4j.cuda.check.SuiteRunner [--class C]... [--include-tag T]... [--exclude-tag T]... [--list]
 * </pre>
 * Without {@code --class} it selects the package org.vgg4j.cuda; {@code --list} prints the selected classes instead. scripts/gpu-check.sh runs each class in a JVM of
 * its own, so a fault that loses the GPU context cannot fail another class.
 */
public final class SuiteRunner {
    private SuiteRunner() {
    }

    public static void main(String[] args) {
        List<DiscoverySelector> selectors = new ArrayList<>();
        List<String> include = new ArrayList<>();
        List<String> exclude = new ArrayList<>();
        boolean list = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--class" -> selectors.add(selectClass(args[++i]));
                case "--include-tag" -> include.add(args[++i]);
                case "--exclude-tag" -> exclude.add(args[++i]);
                case "--list" -> list = true;
                default -> throw new IllegalArgumentException("unknown argument '" + args[i] + "'; see the javadoc");
            }
        }
        if (selectors.isEmpty()) {
            selectors.add(selectPackage("org.vgg4j.cuda"));
        }
        List<Filter<?>> filters = new ArrayList<>();
        if (!include.isEmpty()) {
            filters.add(TagFilter.includeTags(include));
        }
        if (!exclude.isEmpty()) {
            filters.add(TagFilter.excludeTags(exclude));
        }
        LauncherDiscoveryRequest request = LauncherDiscoveryRequestBuilder.request().selectors(selectors)
                .filters(filters.toArray(new Filter<?>[0])).build();
        Launcher launcher = LauncherFactory.create();
        if (list) { // the selected test classes, one per line (gpu-check.sh runs each in a JVM of its own)
            TestPlan plan = launcher.discover(request);
            Set<String> classes = new TreeSet<>();
            for (TestIdentifier root : plan.getRoots()) {
                for (TestIdentifier c : plan.getChildren(root)) {
                    c.getSource().filter(ClassSource.class::isInstance)
                            .ifPresent(src -> classes.add(((ClassSource) src).getClassName()));
                }
            }
            classes.forEach(System.out::println);
            return;
        }
        AtomicInteger passed = new AtomicInteger();
        AtomicInteger failed = new AtomicInteger();
        AtomicInteger skipped = new AtomicInteger();
        launcher.execute(request, new TestExecutionListener() {
            @Override
            public void executionSkipped(TestIdentifier id, String reason) {
                skipped.incrementAndGet();
                System.out.println("SKIP  " + name(id) + ": " + reason);
            }

            @Override
            public void executionFinished(TestIdentifier id, TestExecutionResult r) {
                switch (r.getStatus()) {
                    case SUCCESSFUL -> {
                        if (id.isTest()) {
                            passed.incrementAndGet();
                            System.out.println("PASS  " + name(id));
                        }
                    }
                    case ABORTED -> {
                        skipped.incrementAndGet();
                        System.out.println("SKIP  " + name(id) + ": " + r.getThrowable().map(Throwable::getMessage)
                                .orElse("aborted"));
                    }
                    case FAILED -> {
                        failed.incrementAndGet();
                        System.out.println("FAIL  " + name(id));
                        r.getThrowable().ifPresent(t -> {
                            for (Throwable c = t; c != null; c = c.getCause()) {
                                System.out.println("      " + c);
                            }
                            StackTraceElement[] st = t.getStackTrace();
                            for (int i = 0; i < Math.min(8, st.length); i++) {
                                System.out.println("        at " + st[i]);
                            }
                        });
                    }
                }
            }
        });
        System.out.println(passed + " passed, " + failed + " failed, " + skipped + " skipped");
        System.exit(failed.get() == 0 && passed.get() > 0 ? 0 : 1);
    }

    private static String name(TestIdentifier id) {
        String u = id.getUniqueId();
        // [engine:junit-jupiter]/[class:org.vgg4j.cuda.ConvKernelTest]/[method:x()] -> ConvKernelTest/x()
        StringBuilder b = new StringBuilder();
        for (String part : u.split("/")) {
            int colon = part.indexOf(':');
            if (part.startsWith("[engine:") || colon < 0) {
                continue;
            }
            String v = part.substring(colon + 1, part.length() - 1);
            if (part.startsWith("[class:")) {
                v = v.substring(v.lastIndexOf('.') + 1);
            }
            b.append(b.length() == 0 ? "" : "/").append(v);
        }
        return b.length() == 0 ? id.getDisplayName() : b.toString();
    }
}
