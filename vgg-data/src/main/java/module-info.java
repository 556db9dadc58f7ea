/**
 * VGG4J's data: image decoding, datasets, shards and the paper's transforms. It needs no other VGG4J module.
 * TwelveMonkeys' JPEG reader is found by ImageIO at run time (class path or module path).
 */
module org.vgg4j.data {
    requires java.desktop;
    requires jdk.management; // DataTool: the process's CPU time
    requires org.slf4j;

    exports org.vgg4j.data;
}
