/**
 * VGG4J's core: tensors, layers, networks, the optimiser, checkpoints, the collectives' interfaces and the backend
 * SPI ({@code org.vgg4j.core.backend}: what a backend implements, and {@code BackendTensors} to make its tensors).
 * The reference and cpu backends are found through {@link java.util.ServiceLoader}, never named, so their packages
 * are not exported; nor are the benchmarks.
 *
 * <p>ND4J 1.0.0-M2.1 (the cpu backend's) cannot be a module: the JVM refuses its nd4j-api jar's descriptor (it
 * names a package the jar lacks). It and JNA stay on the class path, and this module reads them with
 * {@code --add-reads org.vgg4j.core=ALL-UNNAMED} (set for compiling and testing in the poms).
 */
module org.vgg4j.core {
    requires org.bytedeco.javacpp;
    requires org.bytedeco.openblas;
    requires org.bytedeco.dnnl;
    requires org.slf4j;
    requires jdk.management; // bench: the process's CPU time

    exports org.vgg4j.core.backend;
    exports org.vgg4j.core.io;
    exports org.vgg4j.core.layers;
    exports org.vgg4j.core.model;
    exports org.vgg4j.core.optim;
    exports org.vgg4j.core.parallel;
    exports org.vgg4j.core.tensor;

    uses org.vgg4j.core.backend.BackendProvider;
    uses org.vgg4j.core.parallel.AllReduceProvider;
    uses org.vgg4j.core.parallel.CollectiveProvider;

    provides org.vgg4j.core.backend.BackendProvider with
            org.vgg4j.core.backend.reference.ReferenceBackendProvider,
            org.vgg4j.core.backend.cpu.CpuBackendProvider;
}
