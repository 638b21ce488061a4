locals {
  create_vpc = var.vpc_id == null
  vpc_id     = local.create_vpc ? aws_vpc.this[0].id : var.vpc_id
  subnet_ids = local.create_vpc ? aws_subnet.public[*].id : var.subnet_ids
  vpc_cidr   = local.create_vpc ? var.vpc_cidr : data.aws_vpc.given[0].cidr_block
  pod_cidrs  = length(var.pod_cidrs) > 0 ? var.pod_cidrs : [local.vpc_cidr]
  tags       = merge({ "awsctl.io/component" = "alb" }, var.tags)
  listeners = merge(
    { http = { port = 80, protocol = "HTTP", ssl_policy = null, certificate_arn = null } },
    var.certificate_arn == null ? {} : {
      https = { port = 443, protocol = "HTTPS", ssl_policy = var.ssl_policy, certificate_arn = var.certificate_arn }
    },
  )
}

data "aws_vpc" "given" {
  count = local.create_vpc ? 0 : 1
  id    = var.vpc_id
}

# -- a VPC with two public subnets, when none is given --------------------------------------------
resource "aws_vpc" "this" {
  count                = local.create_vpc ? 1 : 0
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = merge(local.tags, { Name = var.name })
}

resource "aws_internet_gateway" "this" {
  count  = local.create_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id
  tags   = merge(local.tags, { Name = var.name })
}

resource "aws_subnet" "public" {
  count                   = local.create_vpc ? 2 : 0
  vpc_id                  = aws_vpc.this[0].id
  cidr_block              = cidrsubnet(var.vpc_cidr, 4, count.index)
  availability_zone       = var.availability_zones[count.index]
  map_public_ip_on_launch = true
  tags                    = merge(local.tags, { Name = "${var.name}-public-${count.index}" })
}

resource "aws_route_table" "public" {
  count  = local.create_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id
  tags   = merge(local.tags, { Name = "${var.name}-public" })
}

resource "aws_route" "internet" {
  count                  = local.create_vpc ? 1 : 0
  route_table_id         = aws_route_table.public[0].id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this[0].id
}

resource "aws_route_table_association" "public" {
  count          = local.create_vpc ? 2 : 0
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public[0].id
}

# -- security groups: clients -> ALB -> pod IPs on the target ports --------------------------------
resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "Clients to the ${var.name} ALB listeners; the ALB to pod IPs on the target ports"
  vpc_id      = local.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-alb" })
}

resource "aws_security_group_rule" "alb_listeners" {
  for_each          = toset(var.certificate_arn == null ? ["80"] : ["80", "443"])
  type              = "ingress"
  security_group_id = aws_security_group.alb.id
  protocol          = "tcp"
  from_port         = tonumber(each.value)
  to_port           = tonumber(each.value)
  cidr_blocks       = var.ingress_cidrs
  description       = "clients to the listener on ${each.value}"
}

resource "aws_security_group_rule" "alb_to_pods" {
  for_each          = toset([for p in var.target_ports : tostring(p)])
  type              = "egress"
  security_group_id = aws_security_group.alb.id
  protocol          = "tcp"
  from_port         = tonumber(each.value)
  to_port           = tonumber(each.value)
  cidr_blocks       = local.pod_cidrs
  description       = "the ALB to pod IPs (IP targets) on ${each.value}"
}

resource "aws_security_group" "pods" {
  name        = "${var.name}-pods"
  description = "Attach to nodes (or pods): lets the ${var.name} ALB reach pod IPs on the target ports"
  vpc_id      = local.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-pods" })
}

resource "aws_security_group_rule" "pods_from_alb" {
  for_each                 = toset([for p in var.target_ports : tostring(p)])
  type                     = "ingress"
  security_group_id        = aws_security_group.pods.id
  protocol                 = "tcp"
  from_port                = tonumber(each.value)
  to_port                  = tonumber(each.value)
  source_security_group_id = aws_security_group.alb.id
  description              = "health checks and traffic from the ALB on ${each.value}"
}

# -- the ALB and its listeners -----------------------------------------------------------------------
resource "aws_lb" "this" {
  name               = var.name
  load_balancer_type = "application"
  internal           = var.internal
  security_groups    = [aws_security_group.alb.id]
  subnets            = local.subnet_ids
  tags               = local.tags
}

# awsctl drives a rule (Canary spec.loadBalancer.rule) or this default action; until then: 404.
resource "aws_lb_listener" "this" {
  for_each          = local.listeners
  load_balancer_arn = aws_lb.this.arn
  port              = each.value.port
  protocol          = each.value.protocol
  ssl_policy        = each.value.ssl_policy
  certificate_arn   = each.value.certificate_arn

  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      message_body = "no route"
      status_code  = "404"
    }
  }

  # awsctl owns the forward action once a Canary drives the default action.
  lifecycle {
    ignore_changes = [default_action]
  }

  tags = local.tags
}
