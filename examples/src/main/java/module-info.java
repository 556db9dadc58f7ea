/** Runnable examples of VGG4J (README's main job among them); nothing to export. */
module org.vgg4j.examples {
    requires org.vgg4j.core;
    requires org.vgg4j.data;
    requires org.vgg4j.train;
}
