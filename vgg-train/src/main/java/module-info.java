/**
 * VGG4J's training: the trainer, its recipes, evaluation, checkpoints, data parallelism (replicas on one machine,
 * TCP between processes) and the {@code vgg} command line. Device collectives come from other modules through
 * vgg-core's {@link java.util.ServiceLoader} interfaces; this module never names vgg-cuda.
 */
module org.vgg4j.train {
    requires transitive org.vgg4j.core;
    requires transitive org.vgg4j.data;
    requires java.desktop; // the training curves (Java2D, ImageIO)
    requires org.slf4j;
    requires info.picocli;

    exports org.vgg4j.train;
    exports org.vgg4j.train.cli;
    exports org.vgg4j.train.dist;

    opens org.vgg4j.train.cli to info.picocli; // picocli sets the annotated option fields
}
